"""Shares: requests, grants, renewals, revocations, expiry and the batch API."""

from sharetui.core.sharing.service import RequestResult, ShareInput, SharingService

__all__ = ["RequestResult", "ShareInput", "SharingService"]
