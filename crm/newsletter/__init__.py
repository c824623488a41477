"""The firm's newsletter: subscribers with double opt-in, campaigns and their delivery (decision 0203).

``services`` writes, ``views`` are the pages; the URL names stay in ``crm.urls`` (``crm:newsletter``...)
and the Celery tasks in ``crm.tasks``.
"""
