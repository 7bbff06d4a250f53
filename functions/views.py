"""Functions pages outside /v1 (namespace ``functions``): the dashboard's list, and the code download behind a
signed, expiring link (no bearer token)."""

from io import BytesIO

from django.http import FileResponse, Http404, HttpResponse
from django.views.decorators.http import require_safe

from elbia.links import LinkExpired, LinkInvalid
from elbia.pages import dashboard_page, list_page
from functions.code import CodeUnavailable, code_read
from functions.filtersets import FunctionFilterSet
from functions.links import function_code_from_token
from functions.models import Function, FunctionStatus
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


@require_safe
def function_code_download(request, token: str):
    """The ZIP archive the link was signed for: 404 if altered or the function is gone, 410 once expired."""
    try:
        public_id, sha256 = function_code_from_token(token)
    except LinkInvalid:
        raise Http404("No such code.") from None
    except LinkExpired:
        return HttpResponse(
            "This code link has expired. Ask the API for a new one.\n", status=410, content_type="text/plain"
        )
    function = Function.objects.filter(public_id=public_id).exclude(status=FunctionStatus.DELETED).first()
    if function is None:
        raise Http404("No such function.")
    try:
        data = code_read(sha256)
    except CodeUnavailable:
        raise Http404("No such code.") from None
    response = FileResponse(
        BytesIO(data), content_type="application/zip", as_attachment=True, filename=f"{function.name}.zip"
    )
    response["Cache-Control"] = "private, max-age=300"
    return response
