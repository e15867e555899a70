"""
C{python -m chat.client.tk}: the desktop client, as C{chat-tk}.
"""

from chat.client.tk import main

main()
