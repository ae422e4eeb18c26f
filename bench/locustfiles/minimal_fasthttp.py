"""The smallest possible FastHttpUser: one GET, no checks, no think time (the baseline)."""

from locust import FastHttpUser, constant, task


class MinimalUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def product(self) -> None:
        self.client.get("/api/products/1")
