"""The JSON shapes discord.py expects, built from the fake's :class:`World`.

Fields discord.py indexes directly are always present (see GUIDE §3): a missing one is a
KeyError inside the client, far from the cause.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from tests.fakediscord.models import (
    BOT_PERMISSIONS,
    Attachment,
    GatewaySession,
    Guild,
    Message,
    World,
)

JOINED = "2025-01-01T00:00:00+00:00"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def user(world: World, user_id: int) -> dict[str, Any]:
    name = world.user_names.get(user_id, f"user{user_id % 100000}")
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": user_id in world.bot_users,
        "public_flags": 0,
    }


def bot_user(world: World) -> dict[str, Any]:
    data = user(world, world.bot_user_id)
    data.update(bot=True, verified=True, mfa_enabled=False, flags=0)
    return data


def member(world: World, user_id: int) -> dict[str, Any]:
    return {
        "user": user(world, user_id),
        "roles": [],
        "joined_at": JOINED,
        "deaf": False,
        "mute": False,
        "pending": False,
        "nick": None,
        "avatar": None,
        "flags": 0,
        "permissions": world.member_permissions.get(user_id, "0"),
    }


def channel(guild: Guild, channel_id: int) -> dict[str, Any]:
    position = guild.channel_ids.index(channel_id)
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild.id),
        "name": f"music-{position}" if position else "music",
        "position": position,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def everyone_role(guild: Guild) -> dict[str, Any]:
    return {
        "id": str(guild.id),
        "name": "@everyone",
        "permissions": BOT_PERMISSIONS,
        "position": 0,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def guild_create(world: World, guild: Guild) -> dict[str, Any]:
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "owner_id": str(world.owner_id),
        "unavailable": False,
        "member_count": 2,
        "large": False,
        "joined_at": JOINED,
        "features": [],
        "emojis": [],
        "stickers": [],
        "roles": [everyone_role(guild)],
        "channels": [channel(guild, c) for c in guild.channel_ids],
        "members": [member(world, world.bot_user_id)],
        "threads": [],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "preferred_locale": "en-US",
        "premium_tier": 0,
        "system_channel_id": None,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
    }


def ready(
    world: World, session: GatewaySession, guilds: list[Guild], gateway_url: str
) -> dict[str, Any]:
    me = bot_user(world)
    me["email"] = None
    return {
        "v": 10,
        "user": me,
        "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
        "session_id": session.id,
        "resume_gateway_url": gateway_url,
        "application": {"id": str(world.application_id), "flags": 0},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": [],
        "user_settings": {},
        "auth_session_id_hash": "",
        "shard": list(session.shard),
    }


def attachment(world: World, att: Attachment) -> dict[str, Any]:
    url = f"{world.base_url}/attachments/{att.id}/{att.filename}"
    data: dict[str, Any] = {
        "id": str(att.id),
        "filename": att.filename,
        "size": len(att.data),
        "url": url,
        "proxy_url": url,
        "content_type": att.content_type,
    }
    if att.description:
        data["description"] = att.description
    return data


def reaction_counts(world: World, msg: Message) -> list[dict[str, Any]]:
    return [
        {
            "emoji": {"id": None, "name": emoji},
            "count": len(users),
            "count_details": {"normal": len(users), "burst": 0},
            "me": world.bot_user_id in users,
            "me_burst": False,
            "burst_colors": [],
        }
        for emoji, users in msg.reactions.items()
        if users
    ]


def message(world: World, msg: Message) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(msg.id),
        "channel_id": str(msg.channel_id),
        "author": msg.author,
        "content": msg.content,
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [attachment(world, a) for a in msg.attachments],
        "embeds": msg.embeds,
        "components": msg.components,
        "reactions": reaction_counts(world, msg),
        "pinned": False,
        "type": 20 if msg.interaction_id else 0,
        "flags": msg.flags,
    }
    if msg.guild_id is not None:
        data["guild_id"] = str(msg.guild_id)
    if msg.webhook_id is not None:
        data["webhook_id"] = str(msg.webhook_id)
        data["application_id"] = str(world.application_id)
    return data


def interaction(
    world: World,
    itype: int,
    user_id: int,
    data: dict[str, Any],
    guild: Guild,
    channel_id: int,
    **extra: Any,
) -> dict[str, Any]:
    iid = world.snowflake()
    payload: dict[str, Any] = {
        "id": str(iid),
        "application_id": str(world.application_id),
        "type": itype,
        "data": data,
        "guild_id": str(guild.id),
        "channel_id": str(channel_id),
        "channel": channel(guild, channel_id),
        "member": member(world, user_id),
        "token": f"itok{iid}{secrets.token_hex(12)}",
        "version": 1,
        "app_permissions": BOT_PERMISSIONS,
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    payload.update(extra)
    return payload


def reaction_add(world: World, msg: Message, user_id: int, emoji: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": 0,
        "user_id": str(user_id),
        "channel_id": str(msg.channel_id),
        "message_id": str(msg.id),
        "emoji": {"id": None, "name": emoji},
        "burst": False,
        "burst_colors": [],
        "message_author_id": msg.author["id"],
    }
    if msg.guild_id is not None:
        data["guild_id"] = str(msg.guild_id)
        data["member"] = member(world, user_id)
    return data


def application(world: World) -> dict[str, Any]:
    return {
        "id": str(world.application_id),
        "name": "qtune",
        "description": "",
        "icon": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": user(world, world.owner_id),
        "verify_key": "0" * 64,
        "team": None,
        "flags": 0,
        "interactions_endpoint_url": None,
        "summary": "",
    }
