"""Dashboard pages of resources (namespace ``resources``)."""

from elbia.pages import dashboard_page, list_page
from resources.filtersets import ResourceFilterSet
from resources.selectors import resource_list


@dashboard_page
def resource_list_page(request):
    """The account's resources, filtered by status, type and region, 50 per page."""
    return list_page(
        request,
        filterset_class=ResourceFilterSet,
        queryset=resource_list(account=request.account).select_related("vpc", "function"),
        template="resources/list.html",
        section="resources",
    )
