"""The limiter the gateway calls: admit before the upstream, renew while streaming, settle in `finally`."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from lib.errors import Forbidden
from lib.limits import pricing
from lib.limits.base import (
    Adjustment,
    Admission,
    LimitStore,
    QuotaExceeded,
    StoreUnavailable,
    UsageRecord,
)
from lib.limits.estimate import DEFAULT_OUTPUT_TOKENS, TokenEstimate, estimate_tokens
from lib.limits.plan import ms, plan, smallest, usage_counts
from lib.limits.policy import TOKEN_QUOTAS, Limits, day_of, days_back

log = logging.getLogger("streamgate.limits")
DEFAULT_LEASE_TTL_S = 30.0


class Limiter:
    """Per-key limits over one store; a key without limits costs no store call until `settle`."""

    def __init__(
        self,
        store: LimitStore,
        *,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    ) -> None:
        self.store = store
        self.lease_ttl_ms = int(lease_ttl_s * 1000)
        self.default_output_tokens = default_output_tokens

    def estimate(self, body: dict[str, Any], limits: Limits) -> TokenEstimate:
        """The reservation for a request body (prompt estimate + largest output cap, or the default)."""
        return estimate_tokens(body, limits, self.default_output_tokens)

    async def _reserve_usd(self, limits: Limits, model: str, est: TokenEstimate) -> int:
        await pricing.load()
        if not pricing.known(model):
            raise Forbidden(
                f"This API key has a USD budget and no price is known for model '{model}'."
            )
        cost = pricing.estimate_cost(est.prompt, est.output, model)
        cap = smallest(limits, [q for q in limits.active() if q.usd])
        return min(cost, cap) if cap is not None else cost

    async def admit(
        self,
        key_id: str,
        limits: Limits,
        model: str,
        estimate: TokenEstimate,
        now: datetime | None = None,
    ) -> Admission:
        """Reserve the request against every limit at once; raises QuotaExceeded (429), Forbidden, 503."""
        moment = now or datetime.now(UTC)
        # 64 random bits: unique among one key's entries, and short in a DynamoDB item.
        admission_id = secrets.token_hex(8)
        admission = Admission(admission_id, key_id, model, limits, estimate, moment)
        if limits.empty:
            return admission
        cap = limits.smallest_token_limit()
        tokens = estimate.total if cap is None else min(estimate.total, cap)
        micro_usd = (
            await self._reserve_usd(limits, model, estimate) if limits.has_usd else 0
        )
        checks = plan(limits, tokens, micro_usd, moment, self.lease_ttl_ms)
        now_ms = None if now is None else ms(now)
        verdict = await self.store.admit(key_id, admission.id, checks, now_ms)
        admission.tokens, admission.micro_usd = tokens, micro_usd
        admission.checks, admission.outcomes = checks, verdict.outcomes
        admission.local = verdict.local
        if not verdict.admitted:
            pairs = zip(checks, verdict.outcomes)
            refused = [(c, o) for c, o in pairs if o.used + c.amount > c.limit]
            raise QuotaExceeded(key_id, refused, admission.states())
        return admission

    async def admit_count(
        self, key_id: str, limits: Limits, model: str, now: datetime | None = None
    ) -> Admission:
        """Admit a call that counts or tokenizes: it generates nothing, so it is held to the key's
        request limits and charged no tokens or USD, even when a token or USD budget is spent."""
        return await self.admit(
            key_id, limits.without_budgets(), model, TokenEstimate(0, 0), now
        )

    async def renew(self, admission: Admission, now: datetime | None = None) -> bool:
        """Extend the admission's stream lease (call every few seconds); False if there is none or it lapsed."""
        lease = admission.lease()
        if lease is None or admission.settled:
            return False
        now_ms = None if now is None else ms(now)
        try:
            return await self.store.renew(
                admission.key_id, lease.name, admission.id, self.lease_ttl_ms, now_ms
            )
        except StoreUnavailable:
            return False

    async def _cost(
        self, admission: Admission, usage: dict[str, Any] | None, model: str
    ) -> int:
        if usage is None:
            if admission.micro_usd:
                return admission.micro_usd
            est = admission.estimate
            await pricing.load()
            return pricing.estimate_cost(est.prompt, est.output, model)
        await pricing.load()
        return pricing.cost(usage, model)

    def _record(
        self, admission: Admission, counts: dict[str, int] | None, model: str, cost: int
    ) -> UsageRecord:
        if counts is None:
            prompt = min(
                admission.estimate.prompt, admission.tokens or admission.estimate.total
            )
            output = (admission.tokens or admission.estimate.total) - prompt
            counts = {
                "prompt": prompt,
                "output": output,
                "thoughts": 0,
                "cached": 0,
                "tool": 0,
            }
        return UsageRecord(
            admission.key_id,
            day_of(admission.at),
            model,
            requests=1,
            prompt_tokens=counts["prompt"] + counts["tool"],
            output_tokens=counts["output"],
            thoughts_tokens=counts["thoughts"],
            cached_tokens=counts["cached"],
            micro_usd=cost,
        )

    async def settle(
        self,
        admission: Admission,
        usage: dict[str, Any] | None,
        model: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Charge what the stream used (its reservation if it reported nothing), free the lease, record usage.

        Call it once, in the relay's `finally` (also on cancel); it never raises.
        """
        if admission.settled:
            return
        admission.settled = True
        model = model or admission.model
        try:
            await self._settle(admission, usage_counts(usage), usage, model, now)
        except StoreUnavailable as exc:
            log.warning(
                "limits: usage of key %s not recorded (%s)", admission.key_id, exc
            )
        except Exception:
            log.exception("limits: settling key %s failed", admission.key_id)

    async def _settle(
        self,
        admission: Admission,
        counts: dict[str, int] | None,
        usage: dict[str, Any] | None,
        model: str,
        now: datetime | None,
    ) -> None:
        cost = await self._cost(admission, usage if counts else None, model)
        tokens = admission.tokens
        if counts is not None:
            tokens = (
                counts["prompt"]
                + counts["output"]
                + counts["thoughts"]
                + counts["tool"]
            )
        adjustments = [
            Adjustment(c.kind, c.name, c.amount, cost if c.quota.usd else tokens)
            for c in admission.checks
            if c.quota.usd or c.quota in TOKEN_QUOTAS
        ]
        lease = admission.lease()
        await self.store.settle(
            admission.key_id,
            admission.id,
            adjustments,
            lease.name if lease else None,
            self._record(admission, counts, model, cost),
            None if now is None else ms(now),
        )

    async def usage(
        self, key_id: str | None = None, days: int = 7, now: datetime | None = None
    ) -> list[UsageRecord]:
        """Usage rows for the last `days` UTC days (today included), for one key or all."""
        moment = now or datetime.now(UTC)
        return await self.store.usage(key_id, days_back(moment, days))

    async def close(self) -> None:
        await self.store.close()
