"""
C{python -m chat.client}: the terminal client, as C{chat-client}.
"""

from chat.client.stdio import main

main()
