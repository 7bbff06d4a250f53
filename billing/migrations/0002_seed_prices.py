"""Seed the price book with AWS's public us-east-1 on-demand prices (Lambda x86, EC2 Linux)."""

import datetime
from decimal import Decimal

from django.db import migrations

EFFECTIVE_FROM = datetime.date(2020, 1, 1)

LAMBDA = {
    "request": Decimal("0.20"),  # per 1M requests
    "gb_second": Decimal("0.0000166667"),  # per GB-second
}

# EC2 on-demand, Linux, us-east-1, USD per instance-hour.
EC2 = {
    "t2.nano": "0.0058",
    "t2.micro": "0.0116",
    "t2.small": "0.023",
    "t2.medium": "0.0464",
    "t2.large": "0.0928",
    "t2.xlarge": "0.1856",
    "t2.2xlarge": "0.3712",
    "t3.nano": "0.0052",
    "t3.micro": "0.0104",
    "t3.small": "0.0208",
    "t3.medium": "0.0416",
    "t3.large": "0.0832",
    "t3.xlarge": "0.1664",
    "t3.2xlarge": "0.3328",
    "m5.large": "0.096",
    "m5.xlarge": "0.192",
    "m5.2xlarge": "0.384",
    "m5.4xlarge": "0.768",
    "m5.8xlarge": "1.536",
    "m5.12xlarge": "2.304",
    "m5.16xlarge": "3.072",
    "m5.24xlarge": "4.608",
    "c5.large": "0.085",
    "c5.xlarge": "0.17",
    "c5.2xlarge": "0.34",
    "c5.4xlarge": "0.68",
    "c5.9xlarge": "1.53",
    "c5.12xlarge": "2.04",
    "c5.18xlarge": "3.06",
    "c5.24xlarge": "4.08",
}


def seed_prices(apps, schema_editor):
    Price = apps.get_model("billing", "Price")
    rows = [Price(kind=kind, instance_type="", unit_price=price) for kind, price in LAMBDA.items()]
    rows += [Price(kind="instance_hour", instance_type=name, unit_price=Decimal(price)) for name, price in EC2.items()]
    for row in rows:
        row.currency = "USD"
        row.effective_from = EFFECTIVE_FROM
    Price.objects.bulk_create(rows, ignore_conflicts=True)


def remove_prices(apps, schema_editor):
    apps.get_model("billing", "Price").objects.filter(effective_from=EFFECTIVE_FROM).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed_prices, remove_prices)]
