"""A user-written Locust class, run by loadkit as a ``locust: module:Class`` journey in tests."""

from __future__ import annotations

from locust import FastHttpUser, task


class ShopUser(FastHttpUser):
    """Checks health mostly, and sometimes asks for a product without logging in (401)."""

    @task(3)
    def health(self) -> None:
        self.client.get("/healthz")

    @task(1)
    def product(self) -> None:
        self.client.get("/api/products/2", name="/api/products/[id]")


class VerifyingUser(FastHttpUser):
    """Checks health over HTTPS, verifying the certificate against the system's CAs (Locust's
    default is not to verify): a test CA's certificate fails, as a TLS error."""

    insecure = False

    @task
    def health(self) -> None:
        self.client.get("/healthz", name="/healthz (verifying)")
