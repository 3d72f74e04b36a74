"""The tracker: a Faust worker recording image results (`worker/`) and the status API (`api/`)."""
