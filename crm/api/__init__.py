"""The CRM's REST API (/api/v1/...), one module per resource with its serializers, filters and
views. Thin: scoping in crm.access, writes in crm.services, reads in crm.selectors. Every list is
paginated, filterable, searchable and orderable. crm.api_urls routes them; the newsletter's API is
crm.newsletter.api."""
