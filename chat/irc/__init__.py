"""
The IRC front end (PROTOCOL.md section 14, docs/irc.md): IRC clients and
bots as participants of the same L{chat.server.ChatServer} as the line and
web front ends.
"""
