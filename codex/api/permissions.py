from rest_framework.permissions import SAFE_METHODS, BasePermission


class CanWrite(BasePermission):
    """Reads for every authenticated member; writes for owners, admins, advisors and write keys."""

    message = "Your role may read but not change this."

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return bool(getattr(request.user, "can_write", False))


class IsFirmManager(BasePermission):
    """Owners and admins of the firm (signed-in users, not API keys)."""

    message = "Only the firm's owners and admins may do this."

    def has_permission(self, request, view):
        return bool(getattr(request.user, "is_manager", False))
