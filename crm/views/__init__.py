"""CRM pages on a firm's host, one module per subject. Thin: forms parse, crm.services write,
crm.selectors read, and crm.access decides what the user may see (404 outside the book, 403 for
read-only roles). The newsletter's pages are in crm.newsletter.views; crm.urls names each view."""
