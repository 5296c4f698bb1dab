"""``/openapi.json``: the API described for tools (OpenAPI 3.1), written out by hand so
it says exactly what LeadSquared's scripts send and get back."""

from __future__ import annotations

from typing import Any

from sharetui import __version__


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _replies(success: str, *codes: int) -> dict[str, Any]:
    texts = {
        400: "malformed body or parameters; nothing was written",
        401: "missing, unknown or revoked key, wrong secret, or an inactive user",
        403: "the key's user may not do this",
        404: "no such record or request the key's user may read",
        413: "the body is larger than the server's limit; nothing was written",
        422: "the request was refused (it is kept in history with its reason)",
        207: "several items, some done and some refused: Status 'Partial', Results per item",
    }
    out: dict[str, Any] = {
        "200": {"description": "done", "content": {"application/json": {"schema": _ref(success)}}}
    }
    for code in codes:
        out[str(code)] = {
            "description": texts[code],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    return out


_ID = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]+$"}]}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``sharetui serve``."""
    keys = [
        {"name": "accessKey", "in": "query", "schema": {"type": "string"}},
        {"name": "secretKey", "in": "query", "schema": {"type": "string"}},
    ]
    share_item = {
        "type": "object",
        "required": ["UserId", "Entity", "EntityId"],
        "properties": {
            "UserId": {
                "description": "username or user id of the sales user",
                "oneOf": [{"type": "string"}, _ID],
            },
            "Entity": {"enum": [1, 5], "description": "1 lead, 5 opportunity"},
            "EntityType": {"enum": [3], "description": "3: shared with a user (the only kind)"},
            "EntityId": _ID,
            "ContextEntity": {"enum": [1], "description": "1: the context is an activity (leads only)"},
            "ContextEntityId": _ID,
            "AccessType": {"enum": [1, 2], "description": "1 read, 2 edit"},
            "DurationInMinutes": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            "UntilCompleted": {"type": "boolean"},
        },
        "additionalProperties": False,
    }
    revoke_item = {
        "type": "object",
        "required": ["UserId", "Entity", "EntityId"],
        "properties": {
            **{k: share_item["properties"][k] for k in ("UserId", "Entity", "EntityType", "EntityId")},
            **{k: share_item["properties"][k] for k in ("ContextEntity", "ContextEntityId", "AccessType")},
            "AllContexts": {"type": "boolean"},
        },
        "additionalProperties": False,
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sharetui HTTP API (LeadSquared-compatible)",
            "version": __version__,
            "description": "Share and revoke leads and opportunities as LeadSquared's entity access API "
            "does. Every call acts as the user of its key, under sharetui's access rules. See docs/api.md.",
        },
        "components": {
            "securitySchemes": {
                "accessKey": {"type": "apiKey", "in": "header", "name": "x-LSQ-AccessKey"},
                "secretKey": {"type": "apiKey", "in": "header", "name": "x-LSQ-SecretKey"},
            },
            "schemas": {
                "ShareItem": share_item,
                "RevokeItem": revoke_item,
                "IdReply": {
                    "type": "object",
                    "properties": {
                        "Status": {"const": "Success"},
                        "Message": {"type": "object", "properties": {"Id": {"type": "string"}}},
                    },
                },
                "StatusReply": {
                    "type": "object",
                    "properties": {
                        "Status": {"const": "Success"},
                        "Message": {"type": "object", "properties": {"ResponseText": {"type": "string"}}},
                        "ShareStatus": {
                            "enum": [1, 6, 7],
                            "description": "1 processing, 6 completed, 7 failed",
                        },
                        "ErrorMessage": {"type": ["string", "null"]},
                        "Requests": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "HistoryReply": {
                    "type": "object",
                    "properties": {
                        "Status": {"const": "Success"},
                        "Message": {"type": "object", "properties": {"Count": {"type": "integer"}}},
                        "History": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Activity": {
                    "type": "object",
                    "required": ["ActivityEvent"],
                    "properties": {
                        "RelatedProspectId": _ID,
                        "RelatedOpportunityId": _ID,
                        "ActivityEvent": {
                            "description": "activity type name or id",
                            "oneOf": [{"type": "string"}, _ID],
                        },
                        "ActivityNote": {"type": "string", "maxLength": 10000},
                        "ActivityDateTime": {"type": "string", "description": "UTC, YYYY-MM-DD HH:MM:SS"},
                        "ActivityOwnerEmail": {"type": "string"},
                        "ActivityOwner": {"type": "string", "description": "username (sharetui)"},
                        "Fields": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"SchemaName": {"type": "string"}, "Value": {}},
                                "additionalProperties": False,
                            },
                        },
                        "ProcessFilesAsync": {"type": "boolean"},
                        "ValidateDropDownOptions": {"type": "boolean"},
                        "IncludeLeadScore": {"type": "boolean"},
                    },
                    "additionalProperties": False,
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "Status": {"const": "Error"},
                        "ExceptionType": {"type": "string"},
                        "ExceptionMessage": {"type": "string"},
                    },
                },
            },
        },
        "security": [{"accessKey": [], "secretKey": []}],
        "paths": {
            "/v2/EntityAccess.svc/Share": {
                "post": {
                    "summary": "Share leads (Entity 1) or opportunities (Entity 5) with sales users",
                    "parameters": keys,
                    "requestBody": _json_body({"type": "array", "items": _ref("ShareItem")}),
                    "responses": _replies("IdReply", 207, 400, 401, 404, 413, 422),
                }
            },
            "/v2/EntityAccess.svc/Revoke": {
                "post": {
                    "summary": "Revoke shares before they expire",
                    "parameters": keys,
                    "requestBody": _json_body({"type": "array", "items": _ref("RevokeItem")}),
                    "responses": _replies("IdReply", 207, 400, 401, 404, 413, 422),
                }
            },
            "/v2/EntityAccess.svc/Status/Get": {
                "get": {
                    "summary": "Status of share or revoke requests (id: one id, or ids joined by commas)",
                    "parameters": [
                        *keys,
                        {"name": "id", "in": "query", "required": True, "schema": {"type": "string"}},
                    ],
                    "responses": _replies("StatusReply", 400, 401, 404),
                }
            },
            "/v2/EntityAccess.svc/History/Get": {
                "get": {
                    "summary": "A record's share history (sharetui's own call)",
                    "parameters": [
                        *keys,
                        {"name": "entity", "in": "query", "required": True, "schema": {"enum": ["1", "5"]}},
                        {"name": "entityId", "in": "query", "required": True, "schema": {"type": "integer"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                        {"name": "afterId", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": _replies("HistoryReply", 400, 401, 404),
                }
            },
            "/v2/ProspectActivity.svc/Create": {
                "post": {
                    "summary": "Post an activity on a lead or an opportunity (fires automations)",
                    "parameters": keys,
                    "requestBody": _json_body(_ref("Activity")),
                    "responses": _replies("IdReply", 400, 401, 403, 404, 413),
                }
            },
        },
    }
