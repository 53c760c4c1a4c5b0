"""A Locust smoke against the billing mock (the docker-compose locust services' default locustfile).

Users list and create customers on billing's demo tenant, the way a Stripe integration does during a month-end
run. The key comes from LOCKSTEP_LOAD_KEY (default: the demo tenant's). Heavier shapes live beside this file.
"""

from __future__ import annotations

import os
import uuid

from locust import HttpUser, between, task


class BillingUser(HttpUser):
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.client.auth = (os.environ.get("LOCKSTEP_LOAD_KEY", "sk_test_lockstepdemo"), "")

    @task(3)
    def list_customers(self) -> None:
        self.client.get("/v1/customers", params={"limit": 10}, name="/v1/customers [list]")

    @task(1)
    def create_customer(self) -> None:
        self.client.post("/v1/customers", data={"name": f"Load {uuid.uuid4().hex[:8]}",
                                                "email": "load@example.com"}, name="/v1/customers [create]")
