"""factory_boy factories; behaviour that depends on services is built through the services."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from ambassadors.models import Ambassador, Program, ProgramCounters


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-for-tests")


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"program-{n}")
    name = factory.LazyAttribute(lambda p: p.slug.replace("-", " ").title())
    destination_url = "https://shop.example.com/welcome?utm_source=parrain"
    allowed_redirect_hosts = factory.LazyFunction(lambda: ["shop.example.com", "blog.example.com"])
    currency = "EUR"
    base_price = Decimal("20.00")
    floor_price = Decimal("10.00")
    hold_period_days = 14

    @factory.post_generation
    def counters(obj: Program, create: bool, extracted: Any, **kwargs: Any) -> None:  # noqa: N805
        if create:
            ProgramCounters.objects.get_or_create(program=obj)


def enroll(program: Program, email: str, **kwargs: Any) -> Ambassador:
    from ambassadors.services import ambassador_enroll

    return ambassador_enroll(program=program, email=email, **kwargs)[0]


def staff_user(username: str, *, group: str) -> Any:
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user
