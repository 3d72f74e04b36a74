"""The tracker worker (`python -m tracker worker`): a Faust app recording image results in PostgreSQL."""
