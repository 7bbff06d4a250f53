"""Running admin actions as a browser does: the changelist form, then (dangerous ones) the confirmation page."""

from elbia.audit.models import AuditEvent


def run_action(client, changelist: str, action: str, objects, *, confirmed: bool = False, query: str = ""):
    """POST ``action`` on ``objects`` from the list at ``/admin/<changelist>/``, following the redirect.

    ``confirmed``: post it as the confirmation page's "Yes, I'm sure" button does.
    """
    data = {"action": action, "_selected_action": [obj.pk for obj in objects]}
    if confirmed:
        data["post"] = "yes"
    else:
        data.update(index=0, select_across=0)
    return client.post(f"/admin/{changelist}/{query}", data, follow=True)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


def staff_events(action: str):
    return AuditEvent.objects.filter(action=action, actor_type="staff")
