"""
The web front end (PROTOCOL.md section 9): C{--web ENDPOINT} serves the
browser client's static files (L{chat.web.site}), the WebSocket whose
participants are L{chat.web.socket.WebParticipant}, and the HTTP file
routes (L{chat.web.files}), over one L{chat.server.ChatServer} shared with
the line front end.
"""
