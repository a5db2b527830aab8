"""The folder ``rasp run`` puts first on ``PYTHONPATH``: its ``sitecustomize`` starts the
agent in every Python process of the command, before the app imports anything."""
