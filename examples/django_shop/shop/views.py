"""The shop's views and URLs (``ROOT_URLCONF``), the same routes as ../../flask_shop.

Views marked VULNERABLE build SQL or a shell line by string formatting, open a file named by
the user, or fetch a URL the user gave: each is a classic injection that the agent stops.
Views marked SAFE bind user text as parameters or pass it as one argument: the right way,
and the agent never gets in their way. The POST views are an API: no CSRF token.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from shop.models import Product, Review


def rows(sql: str) -> list[dict[str, object]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@require_GET
def search_products(request: HttpRequest) -> HttpResponse:
    # VULNERABLE: `name` lands in a string literal, `sort` in ORDER BY (cursor.execute).
    name = request.GET.get("name", "")
    sort = request.GET.get("sort", "id")
    found = rows(f"SELECT * FROM products WHERE name LIKE '%{name}%' ORDER BY {sort}")
    return JsonResponse(found, safe=False)


@require_GET
def product(request: HttpRequest, product_id: str) -> HttpResponse:
    # VULNERABLE: a number pasted into a raw() query (`/products/1 OR 1=1`).
    found = list(Product.objects.raw(f"SELECT * FROM products WHERE id = {product_id}"))
    if not found:
        raise Http404
    return JsonResponse([item.as_dict() for item in found], safe=False)


@csrf_exempt
@require_POST
def login(request: HttpRequest) -> HttpResponse:
    # VULNERABLE: the classic login form (`admin'--` skips the password check).
    user, password = request.POST.get("user", ""), request.POST.get("password", "")
    found = rows(f"SELECT id, name FROM users WHERE name = '{user}' AND password = '{password}'")
    return JsonResponse({"logged_in": bool(found), "user": found[0]["name"] if found else None})


@csrf_exempt
@require_POST
def lookup_user(request: HttpRequest) -> HttpResponse:
    # VULNERABLE: a JSON API; the input is at body.user.name.
    name = json.loads(request.body)["user"]["name"]
    found = rows(f"SELECT id, name, email FROM users WHERE name = '{name}'")
    return JsonResponse(found, safe=False)


@require_GET
def recommendations(request: HttpRequest) -> HttpResponse:
    # VULNERABLE, and it hides its errors: a failed query quietly becomes an empty list.
    category = request.GET.get("category", "office")
    try:
        found = rows(f"SELECT name, price FROM products WHERE category = '{category}'")
    except Exception:
        found = []
    return JsonResponse(found, safe=False)


@csrf_exempt
@require_POST
def add_review(request: HttpRequest, product_id: int) -> HttpResponse:
    # SAFE: the ORM binds user text as parameters, so it can hold any character.
    data = json.loads(request.body) if request.content_type == "application/json" else request.POST
    review = Review.objects.create(
        product_id=product_id, author=data.get("author", ""), body=data.get("body", "")
    )
    return JsonResponse({"id": review.id}, status=201)


@require_GET
def safe_search(request: HttpRequest) -> HttpResponse:
    # SAFE twin of /products: the ORM binds the pattern, the sort column comes from a list.
    sort = {"name": "name", "price": "price"}.get(request.GET.get("sort", ""), "id")
    found = Product.objects.filter(name__icontains=request.GET.get("name", "")).order_by(sort)
    return JsonResponse([item.as_dict() for item in found], safe=False)


@require_GET
def download(request: HttpRequest) -> HttpResponse:
    # VULNERABLE: the name is joined to the files folder as given (`../shop.db`).
    file_path = os.path.join(settings.FILES_DIR, request.GET.get("name", ""))
    try:
        with open(file_path, "rb") as handle:
            return HttpResponse(handle.read(), content_type="application/octet-stream")
    except OSError:
        raise Http404 from None


@require_GET
def lookup_host(request: HttpRequest) -> HttpResponse:
    # VULNERABLE: a shell line built by formatting (`localhost; touch /tmp/pwned`).
    host = request.GET.get("host", "localhost")
    result = subprocess.run(
        f"getent hosts {host}", shell=True, capture_output=True, text=True, timeout=10
    )
    return JsonResponse({"output": result.stdout, "status": result.returncode})


@require_GET
def lookup_host_safe(request: HttpRequest) -> HttpResponse:
    # SAFE twin: an argument list, no shell; the host is one argument whatever it holds.
    host = request.GET.get("host", "localhost")
    result = subprocess.run(["getent", "hosts", host], capture_output=True, text=True, timeout=10)
    return JsonResponse({"output": result.stdout, "status": result.returncode})


@require_GET
def fetch(request: HttpRequest) -> HttpResponse:
    # VULNERABLE: fetches whatever URL it is given (server-side request forgery).
    url = request.GET.get("url", "")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read(4096).decode("utf-8", "replace")
            return JsonResponse({"status": response.status, "body": body})
    except (OSError, ValueError) as error:
        return JsonResponse({"error": str(error)}, status=502)


urlpatterns = [
    path("products", search_products),
    path("products/<product_id>", product),
    path("products/<int:product_id>/reviews", add_review),
    path("login", login),
    path("api/users/lookup", lookup_user),
    path("recommendations", recommendations),
    path("safe/products", safe_search),
    path("download", download),
    path("tools/lookup", lookup_host),
    path("tools/lookup-safe", lookup_host_safe),
    path("fetch", fetch),
]
