"""In-process fakes of our own protocols, one module per kind: answerers, knowledge,
history, clock; and mistral_server, a local stand-in of Mistral's HTTP API."""
