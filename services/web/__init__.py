"""The workspace: server-rendered pages for people, a client of the public API like any partner."""
