"""Cluster support: a message bus and nick claims shared between daemons through Redis."""
