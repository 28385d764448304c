from __future__ import annotations

from app.kernel.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError


class EmailAlreadyRegisteredError(ConflictError):
    code = "email_already_registered"

    def __init__(self) -> None:
        super().__init__("A user with this email already exists")


class InvalidCredentialsError(AuthenticationError):
    code = "invalid_credentials"

    def __init__(self) -> None:
        # One message for unknown email and wrong password: no account enumeration.
        super().__init__("Invalid email or password")


class UserNotFoundError(NotFoundError):
    code = "user_not_found"

    def __init__(self) -> None:
        super().__init__("User not found")


class LastAdminError(ConflictError):
    code = "last_admin"

    def __init__(self) -> None:
        super().__init__("The last admin cannot be demoted: promote another admin first")


class CurrentPasswordMismatchError(InvalidInputError):
    code = "current_password_mismatch"

    def __init__(self) -> None:
        super().__init__("Current password is incorrect", {"currentPassword": ["is incorrect"]})
