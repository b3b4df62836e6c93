"""Who is asking, and what they may do (api-behaviour §2)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from chatd.store.users import ORG_ADMIN_ROLE


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID
    username: str
    email: str
    name: str
    is_owner: bool  # site owner (admin)
    org_roles: dict[uuid.UUID, list[str]] = field(default_factory=dict)

    def is_member(self, org_id: uuid.UUID) -> bool:
        return org_id in self.org_roles

    def is_org_admin(self, org_id: uuid.UUID) -> bool:
        return ORG_ADMIN_ROLE in self.org_roles.get(org_id, [])

    def can_read_chat(self, owner_id: uuid.UUID, org_id: uuid.UUID) -> bool:
        """Owners read their chats; site owners read all; org admins read their org's."""
        return owner_id == self.user_id or self.is_owner or self.is_org_admin(org_id)

    def can_update_chat(self, owner_id: uuid.UUID) -> bool:
        return owner_id == self.user_id

    def can_create_chat(self, org_id: uuid.UUID) -> bool:
        return self.is_member(org_id) or self.is_owner

    def is_admin(self) -> bool:
        """RBAC read/update on the deployment config."""
        return self.is_owner
