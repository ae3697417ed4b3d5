"""avatune's Python client: talk to a running server over HTTP (`avatune.client`)."""
