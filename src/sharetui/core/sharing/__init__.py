"""Shares: requests, grants, renewals, revocations, expiry and the batch API."""

from sharetui.core.sharing.requests import RequestResult, ShareInput
from sharetui.core.sharing.service import SharingService

__all__ = ["RequestResult", "ShareInput", "SharingService"]
