"""Models that cross a service boundary: the provider answers with them, the consumer reads them."""
