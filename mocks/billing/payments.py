"""Payment methods (Stripe's test tokens), payment intents and charges, and the card simulator.

A test token (`pm_card_visa`) becomes a new `pm_...` object when attached. Declining tokens fail at
attach with a 402 card_error, like Stripe. How a card behaves on later charges is private state:
`charge_fail` (every charge declines), `needs_action` (3-D Secure: the first payment needs the customer),
`expired` (set by the sandbox user action `expire_card`: hard decline, no dunning retries).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mocks.billing.base import BillingBase
from mocks.billing.errors import CARD_ERROR, BillingError, invalid, missing
from mocks.billing.ids import random_token

# token -> (brand, last4, funding, behaviour)
TEST_CARDS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "pm_card_visa": ("visa", "4242", "credit", {}),
    "pm_card_visa_debit": ("visa", "5556", "debit", {}),
    "pm_card_mastercard": ("mastercard", "4444", "credit", {}),
    "pm_card_amex": ("amex", "8431", "credit", {}),
    "pm_card_discover": ("discover", "1117", "credit", {}),
    "pm_card_chargeCustomerFail": ("visa", "0341", "credit", {"charge_fail": "generic_decline"}),
    "pm_card_threeDSecure2Required": ("visa", "3220", "credit", {"needs_action": True}),
    "pm_card_authenticationRequired": ("visa", "3184", "credit", {"needs_action": True}),
    "pm_card_chargeDeclined": ("visa", "0002", "credit", {"attach_fail": "generic_decline"}),
    "pm_card_chargeDeclinedInsufficientFunds": ("visa", "9995", "credit", {"attach_fail": "insufficient_funds"}),
    "pm_card_chargeDeclinedExpiredCard": ("visa", "0069", "credit", {"attach_fail": "expired_card"}),
    "pm_card_chargeDeclinedFraudulent": ("visa", "0019", "credit", {"attach_fail": "fraudulent"}),
    "pm_card_chargeDeclinedStolenCard": ("visa", "9979", "credit", {"attach_fail": "stolen_card"}),
    "pm_card_chargeDeclinedLostCard": ("visa", "9987", "credit", {"attach_fail": "lost_card"}),
    "pm_card_chargeDeclinedIncorrectCvc": ("visa", "0127", "credit", {"attach_fail": "incorrect_cvc"}),
    "pm_card_chargeDeclinedProcessingError": ("visa", "0119", "credit", {"attach_fail": "processing_error"}),
}

# Declines that a retry cannot fix: no dunning retries (Stripe's smart retries skip them too).
HARD_DECLINES = frozenset(
    {"expired_card", "stolen_card", "lost_card", "fraudulent", "pickup_card", "restricted_card",
     "incorrect_number", "invalid_account"}
)
# decline_code -> (error code, message)
_DECLINES = {
    "expired_card": ("expired_card", "Your card has expired."),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect."),
    "processing_error": ("processing_error", "An error occurred while processing your card. Try again."),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds."),
}
NO_PAYMENT_METHOD = "This customer has no attached payment source or default payment method."


def decline(decline_code: str) -> tuple[str, str]:
    """(error code, message) of a decline, as Stripe reports it."""
    return _DECLINES.get(decline_code, ("card_declined", "Your card was declined."))


def card_error(decline_code: str, param: str | None = None, extra: dict[str, Any] | None = None) -> BillingError:
    code, message = decline(decline_code)
    return BillingError(message, status=402, type=CARD_ERROR, code=code, decline_code=decline_code,
                        param=param, extra=extra)


class PaymentsMixin(BillingBase):
    # --- payment methods -------------------------------------------------------------------------------
    def _materialize(self, token: str, customer: dict[str, Any] | None) -> dict[str, Any]:
        brand, last4, funding, behaviour = TEST_CARDS[token]
        test_clock = customer["test_clock"] if customer else None
        now = self._now(test_clock)
        date = datetime.fromtimestamp(now, tz=UTC)
        pm = {
            "id": self._new_id("payment_method"),
            "object": "payment_method",
            "billing_details": {
                "address": {"city": None, "country": None, "line1": None, "line2": None,
                            "postal_code": None, "state": None},
                "email": None,
                "name": None,
                "phone": None,
            },
            "card": {
                "brand": brand,
                "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
                "country": "US",
                "display_brand": brand,
                "exp_month": date.month,
                "exp_year": date.year + 3,
                "fingerprint": f"lck{brand[:4]}{last4}"[:16],
                "funding": funding,
                "generated_from": None,
                "last4": last4,
                "networks": {"available": [brand], "preferred": None},
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": now,
            "customer": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
        }
        self.store.put(pm)
        self.store.priv(pm["id"]).update({"behaviour": dict(behaviour), "token": token})
        return pm

    def attach_payment_method(self, pm_id: str, customer: str) -> dict[str, Any]:
        cust = self._require("customer", customer, "customer", "customer")
        if pm_id in TEST_CARDS:
            fail = TEST_CARDS[pm_id][3].get("attach_fail")
            if fail:
                raise card_error(fail)
            pm = self._materialize(pm_id, cust)
        else:
            pm = self.store.get("payment_method", pm_id)
            if pm is None:
                raise missing("PaymentMethod", pm_id, "payment_method")
            if pm["customer"] == customer:
                return self._out(pm)
            if pm["customer"] is not None:
                raise invalid("The payment method you provided has already been attached to a customer.",
                              "payment_method")
            if self.store.priv(pm_id).get("detached"):
                raise invalid(
                    "This PaymentMethod was previously used without being attached to a Customer or was "
                    "detached from a Customer, and may not be used again.", "payment_method",
                )
        pm["customer"] = customer
        self._emit("payment_method.attached", pm)
        return self._out(pm)

    def detach_payment_method(self, pm_id: str) -> dict[str, Any]:
        pm = self._require("payment_method", pm_id, "PaymentMethod")
        if pm["customer"] is None:
            raise invalid("The payment method you provided is not attached to a customer so detachment is "
                          "impossible.", "payment_method")
        customer = self.store.get("customer", pm["customer"])
        pm["customer"] = None
        self.store.priv(pm_id)["detached"] = True
        if customer and not customer.get("deleted"):
            if customer["invoice_settings"]["default_payment_method"] == pm_id:
                self.update_customer(customer["id"], {"invoice_settings": {"default_payment_method": None}})
            for sub in self.store.select("subscription", lambda s: s["default_payment_method"] == pm_id):
                previous = self._changes(sub, {"default_payment_method": None})
                self._emit("customer.subscription.updated", sub, previous)
        self._emit("payment_method.detached", pm, {"customer": customer["id"] if customer else None})
        return self._out(pm)

    def get_payment_method(self, pm_id: str) -> dict[str, Any]:
        return self._out(self._require("payment_method", pm_id, "PaymentMethod"))

    def list_payment_methods(self, customer: str, type: str | None = "card") -> list[dict[str, Any]]:
        self._require("customer", customer, "customer", "customer")
        rows = self.store.select(
            "payment_method", lambda p: p["customer"] == customer and (type is None or p["type"] == type)
        )
        return [self._out(p) for p in rows]

    def _require_attached(self, pm_id: str, customer: str, param: str) -> dict[str, Any]:
        pm = self.store.get("payment_method", pm_id)
        if pm is None or pm["customer"] != customer:
            raise invalid(
                f"The customer does not have a payment method with the ID {pm_id}. The payment method must "
                "be attached to the customer.", param, code="resource_missing",
            )
        return pm

    # --- sandbox user actions --------------------------------------------------------------------------
    def expire_card(self, pm_id: str) -> dict[str, Any]:
        """The card expires: every later charge fails hard with expired_card (no dunning retries)."""
        pm = self._require("payment_method", pm_id, "PaymentMethod")
        self.store.priv(pm_id).setdefault("behaviour", {})["expired"] = True
        before = dict(pm["card"])
        date = datetime.fromtimestamp(self._now(self._pm_clock(pm)), tz=UTC)
        year, month = (date.year, date.month - 1) if date.month > 1 else (date.year - 1, 12)
        pm["card"] = {**pm["card"], "exp_month": month, "exp_year": year}
        self._emit("payment_method.updated", pm, {"card": before})
        return self._out(pm)

    def fail_next_charge(self, customer: str, decline_code: str = "generic_decline") -> dict[str, Any]:
        """The customer's next charge declines with `decline_code`, whatever the card."""
        cust = self._require("customer", customer, "customer", "customer")
        self.store.priv(customer)["fail_next"] = decline_code
        return self._out(cust)

    def _pm_clock(self, pm: dict[str, Any]) -> str | None:
        customer = self.store.get("customer", pm.get("customer"))
        return customer.get("test_clock") if customer else None

    # --- payment intents and charges -------------------------------------------------------------------
    def get_payment_intent(self, pi_id: str) -> dict[str, Any]:
        return self._out(self._require("payment_intent", pi_id, "payment_intent"))

    def list_payment_intents(self, customer: str | None = None) -> list[dict[str, Any]]:
        rows = self.store.select("payment_intent", lambda p: customer is None or p["customer"] == customer)
        return [self._out(p) for p in rows]

    def get_charge(self, charge_id: str) -> dict[str, Any]:
        return self._out(self._require("charge", charge_id))

    def list_charges(self, customer: str | None = None) -> list[dict[str, Any]]:
        rows = self.store.select("charge", lambda c: customer is None or c["customer"] == customer)
        return [self._out(c) for c in rows]

    def _new_payment_intent(self, invoice: dict[str, Any], description: str | None) -> dict[str, Any]:
        pi_id = self._new_id("payment_intent")
        pi = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": invoice["amount_remaining"],
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": f"{pi_id}_secret_{random_token(self.rng, 25)}",
            "confirmation_method": "automatic",
            "created": self._now(invoice["test_clock"]),
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "description": description,
            "invoice": invoice["id"],
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_options": {"card": {"installments": None, "mandate_options": None,
                                                "network": None, "request_three_d_secure": "automatic"}},
            "payment_method_types": ["card"],
            "processing": None,
            "receipt_email": None,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
        self.store.put(pi)
        self._emit("payment_intent.created", pi)
        return pi

    def _attempt_charge(self, pi: dict[str, Any], pm_id: str | None, *, authenticate: bool = False) -> dict[str, Any]:
        """Try to collect `pi` with `pm_id`. Returns {"status": succeeded|requires_action|failed, ...}."""
        test_clock = self.store.get("customer", pi["customer"]).get("test_clock")
        pm = self.store.get("payment_method", pm_id) if pm_id else None
        if pm is None:
            pi.update(status="requires_payment_method", next_action=None, last_payment_error={
                "type": "invalid_request_error", "code": "payment_method_missing" if pm_id else None,
                "message": NO_PAYMENT_METHOD})
            self._emit("payment_intent.payment_failed", pi)
            return {"status": "failed", "code": None, "decline_code": None, "message": NO_PAYMENT_METHOD,
                    "hard": False}
        behaviour = self.store.priv(pm["id"]).setdefault("behaviour", {})
        pi["payment_method"] = pm["id"]
        fail_next = self.store.priv(pi["customer"]).pop("fail_next", None)
        if authenticate:
            behaviour["authenticated"] = True
        decline_code = (
            "expired_card" if behaviour.get("expired")
            else fail_next or behaviour.get("charge_fail")
        )
        if decline_code is None and behaviour.get("needs_action") and not behaviour.get("authenticated"):
            pi.update(status="requires_action", last_payment_error=None,
                      next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}})
            self._emit("payment_intent.requires_action", pi)
            return {"status": "requires_action", "code": "authentication_required",
                    "decline_code": "authentication_required", "hard": False,
                    "message": "Your card was declined. This transaction requires authentication."}
        charge = self._new_charge(pi, pm, decline_code, test_clock)
        pi["latest_charge"] = charge["id"]
        pi["next_action"] = None
        if decline_code is None:
            pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None)
            self._emit("charge.succeeded", charge)
            self._emit("payment_intent.succeeded", pi)
            return {"status": "succeeded", "charge": charge["id"]}
        code, message = decline(decline_code)
        pi.update(status="requires_payment_method", last_payment_error={
            "type": CARD_ERROR, "code": code, "decline_code": decline_code, "message": message,
            "charge": charge["id"], "payment_method": self._out(pm)})
        self._emit("charge.failed", charge)
        self._emit("payment_intent.payment_failed", pi)
        return {"status": "failed", "code": code, "decline_code": decline_code, "message": message,
                "hard": decline_code in HARD_DECLINES, "charge": charge["id"]}

    def _new_charge(self, pi: dict[str, Any], pm: dict[str, Any], decline_code: str | None,
                    test_clock: str | None) -> dict[str, Any]:
        ok = decline_code is None
        code, message = decline(decline_code) if decline_code else (None, None)
        charge_id = self._new_id("charge")
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": pi["amount"] if ok else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None,
            "billing_details": pm["billing_details"],
            "calculated_statement_descriptor": "LOCKSTEP",
            "captured": ok,
            "created": self._now(test_clock),
            "currency": pi["currency"],
            "customer": pi["customer"],
            "description": pi["description"],
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": code,
            "failure_message": message,
            "fraud_details": {},
            "invoice": pi["invoice"],
            "livemode": False,
            "metadata": {},
            "on_behalf_of": None,
            "outcome": {
                "network_status": "approved_by_network" if ok else "declined_by_network",
                "reason": None if ok else decline_code,
                "risk_level": "normal",
                "seller_message": "Payment complete." if ok else "The bank did not return any further details.",
                "type": "authorized" if ok else "issuer_declined",
            },
            "paid": ok,
            "payment_intent": pi["id"],
            "payment_method": pm["id"],
            "payment_method_details": {"card": {k: pm["card"][k] for k in (
                "brand", "country", "exp_month", "exp_year", "fingerprint", "funding", "last4")}, "type": "card"},
            "receipt_email": None,
            "receipt_number": None,
            "receipt_url": None,
            "refunded": False,
            "refunds": {"object": "list", "data": [], "has_more": False,
                        "url": f"/v1/charges/{charge_id}/refunds"},
            "review": None,
            "shipping": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "succeeded" if ok else "failed",
            "transfer_data": None,
            "transfer_group": None,
        }
        return self.store.put(charge)

    def confirm_payment_intent(self, pi_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Confirm (the customer completing 3-D Secure, or paying with another card) an invoice's PI."""
        params = params or {}
        pi = self._require("payment_intent", pi_id, "payment_intent")
        if pi["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
            raise invalid(f"This PaymentIntent's status is {pi['status']}; it cannot be confirmed.",
                          code="payment_intent_unexpected_state")
        pm_id = params.get("payment_method") or pi["payment_method"]
        if pm_id in TEST_CARDS:
            pm_id = self.attach_payment_method(pm_id, pi["customer"])["id"]
        invoice = self.store.get("invoice", pi["invoice"]) if pi["invoice"] else None
        authenticate = pi["status"] == "requires_action" and pm_id == pi["payment_method"]
        if invoice is not None:
            self._collect(invoice, pm_id, authenticate=authenticate, raise_on_failure=False, automatic=False)
        else:
            self._attempt_charge(pi, pm_id, authenticate=authenticate)
        return self._out(pi)
