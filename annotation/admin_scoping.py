"""What a staff user may see and choose in the admin: the campaigns they manage and what hangs off them.

A superuser sees everything. Anyone else sees the campaigns they own or research and the rows reachable from them;
every list, change page, foreign-key choice, list filter and autocomplete goes through the helpers here, so one
team's researcher can neither read nor write another team's rows (docs/security.md, "Admin scoping between teams").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, User
from django.db.models import Exists, Model, OuterRef, Q, QuerySet

from annotation.models import AnnotatorStatus, Assignment, Campaign, Rater, Rating

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise

AnyUser = AbstractBaseUser | AnonymousUser
ModelT = TypeVar("ModelT", bound=Model)


def is_superuser(user: AnyUser) -> bool:
    return bool(user.is_active and getattr(user, "is_superuser", False))


def managed_campaigns(user: AnyUser) -> QuerySet[Campaign, Any] | None:
    """Return the campaigns the user owns or researches (as a pk subquery); None means every campaign."""
    if is_superuser(user):
        return None
    if not user.is_authenticated:
        return Campaign.objects.none().values("pk")
    return Campaign.objects.filter(Q(owner=user.pk) | Q(researchers=user.pk)).values("pk")


def visible_raters(user: AnyUser) -> QuerySet[Rater]:
    """Return the raters the user may see: those who rated, were given work or annotate in a campaign they manage.

    A rater is not owned by a team: a human with an account may annotate for several teams and an imported rater's
    name may recur in several teams' files, so a researcher sees a rater through any of their campaigns.
    """
    mine = managed_campaigns(user)
    if mine is None:
        return Rater.objects.all()
    annotators = User.objects.filter(Q(annotation_campaigns__in=mine) | Q(groups__campaign__in=mine)).values("pk")
    return Rater.objects.filter(
        Exists(Rating.objects.filter(rater=OuterRef("pk"), comparison__campaign__in=mine))
        | Exists(Assignment.objects.filter(rater=OuterRef("pk"), comparison__campaign__in=mine))
        | Exists(AnnotatorStatus.objects.filter(rater=OuterRef("pk"), campaign__in=mine))
        | Q(user__in=annotators)
    )


def may_edit_rater(user: AnyUser, rater: Rater) -> bool:
    """Return whether the user may rename or delete the rater.

    Only a superuser may change a rater with an account (its name is the username), a judge's rater (the judge keeps
    its name) or one that appears in a campaign the user does not manage: a rename would show in other teams' data.
    """
    mine = managed_campaigns(user)
    if mine is None:
        return True
    if rater.user_id is not None or rater.kind != Rater.Kind.HUMAN:
        return False
    elsewhere = (
        Rating.objects.filter(rater=rater).exclude(comparison__campaign__in=mine).exists()
        or Assignment.objects.filter(rater=rater).exclude(comparison__campaign__in=mine).exists()
        or AnnotatorStatus.objects.filter(rater=rater).exclude(campaign__in=mine).exists()
    )
    return not elsewhere


def assignable_groups(user: AnyUser) -> QuerySet[Group]:
    """Return the groups the user may make a campaign's annotator group: their own and those already on their campaigns.

    An operator makes a group available to a researcher by making the researcher a member of it.
    """
    mine = managed_campaigns(user)
    if mine is None:
        return Group.objects.order_by("name")
    return Group.objects.filter(Q(user=user.pk) | Q(campaign__in=mine)).distinct().order_by("name")


def choosable(model: type[Model], request: Any, site: admin.AdminSite) -> QuerySet[Any] | None:
    """Return the objects of ``model`` a foreign key may name in a form of this user; None leaves Django's default.

    The choices are what the model's own admin shows the user, so a form accepts exactly what its autocomplete and
    list offer. Accounts are never offered to a non-superuser (campaign forms take usernames instead), and a model
    without an admin offers nothing: a new foreign key is closed until someone decides who may choose what.
    """
    user = request.user
    if is_superuser(user):
        return None
    if model is User:
        return User.objects.none()
    if model is Group:
        return assignable_groups(user)
    if site.is_registered(model):
        return site.get_model_admin(model).get_queryset(request)
    return model._default_manager.none()


class ScopedChoicesAdmin(admin.ModelAdmin[ModelT]):
    """Limit every foreign-key and many-to-many choice to what the user may see (a forged id is a form error)."""

    def formfield_for_foreignkey(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if "queryset" not in kwargs:
            queryset = choosable(db_field.related_model, request, self.admin_site)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if "queryset" not in kwargs:
            queryset = choosable(db_field.related_model, request, self.admin_site)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-object filter whose choices are what the related model's admin shows the user, not every row.

    Use it for every filter on a campaign (``("campaign", ScopedRelatedFieldListFilter)``) so the sidebar does not
    name other teams' campaigns.
    """

    def field_choices(self, field: Any, request: Any, model_admin: Any) -> list[tuple[str, str | StrPromise]]:
        queryset = choosable(field.related_model, request, model_admin.admin_site)
        if queryset is None:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return [(str(obj.pk), str(obj)) for obj in queryset]
