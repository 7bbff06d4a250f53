import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def owners_of_existing_accounts(apps, schema_editor):
    """Every user of an account until now was its only person: each becomes an owner of it."""
    User = apps.get_model("accounts", "User")
    Membership = apps.get_model("accounts", "Membership")
    users = User.objects.filter(account__isnull=False).values_list("id", "account_id", "date_joined")
    Membership.objects.bulk_create(
        [Membership(user_id=user, account_id=account, role="owner", created_at=joined) for user, account, joined in users],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_ratelimitwindow_token_replaced'),
    ]

    operations = [
        migrations.AlterField(
            model_name='apitoken',
            name='revoked_reason',
            field=models.CharField(blank=True, choices=[('by_user', 'revoked by its owner'), ('by_staff', 'revoked by staff'), ('refresh_reused', 'refresh token reused'), ('oauth_revoke', 'revoked through /oauth/revoke_token/'), ('user_deactivated', 'its user was deactivated'), ('expired', 'expired'), ('replaced', 'replaced by a newer token of its name'), ('by_owner', 'revoked by an account owner'), ('member_removed', 'its creator left the account'), ('role_changed', "its creator's new role allows none of its scopes")], editable=False, max_length=20),
        ),
        migrations.CreateModel(
            name='Membership',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('role', models.CharField(choices=[('owner', 'Owner'), ('developer', 'Developer'), ('billing', 'Billing'), ('viewer', 'Viewer')], max_length=20)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='accounts.account')),
                ('user', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['created_at', 'id'],
                'constraints': [models.UniqueConstraint(fields=('user', 'account'), name='membership_unique_user_account')],
            },
        ),
        migrations.RunPython(owners_of_existing_accounts, migrations.RunPython.noop, elidable=True),
    ]
