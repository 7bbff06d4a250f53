"""Dashboard pages of functions (namespace ``functions``)."""

from elbia.pages import dashboard_page, list_page
from functions.filtersets import FunctionFilterSet
from functions.selectors import function_list


@dashboard_page
def function_list_page(request):
    """The account's functions, filtered by status, runtime, region and tag, 50 per page."""
    return list_page(
        request,
        filterset_class=FunctionFilterSet,
        queryset=function_list(account=request.account),
        template="functions/list.html",
        section="functions",
    )
