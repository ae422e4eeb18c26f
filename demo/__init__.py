"""The demo target app: a small shop back end (REST, GraphQL, Redis chat) to practise on.

Start it with ``python locust_helper.py target`` or ``python -m demo --port 8080``.
"""
