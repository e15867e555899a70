"""The chat client core: the json wire protocol, file transfers on disk, and the frontends built on them."""
