"""The proof suite: evidence that refex holds under bad input, attacks, faults and load."""
