"""CRM search on pg_trgm, step 1 of 2 (expand): the folded names and their GIN ``gin_trgm_ops``
indexes (decision 0201). Generated columns, so every existing row gets its value as the column is
added, and every later write (the import's COPY included) keeps it. The old stored trigram arrays
stay until 0012, so code of the previous release keeps working while this one rolls out."""

import django.contrib.postgres.indexes
import django.db.models.functions.comparison
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0010_drop_name_trigram_indexes"),
        ("tenants", "0003_pg_trgm"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='company',
            name='search_name',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Lower(models.Func(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace('name', models.Value('ß'), models.Value('ss')), models.Value('Æ'), models.Value('ae')), models.Value('æ'), models.Value('ae')), models.Value('Œ'), models.Value('oe')), models.Value('œ'), models.Value('oe')), models.Value('ẞ'), models.Value('ss')), models.Value('ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿŠšŽžČčĆćŁłŃńŚśŹźŻżĘęĄąŘřŤťĎďŇňŮůĞğİıŞş'), models.Value('AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyySsZzCcCcLlNnSsZzZzEeAaRrTtDdNnUuGgIiSs'), function='translate', output_field=models.TextField())), output_field=models.TextField()),
        ),
        migrations.AddField(
            model_name='contact',
            name='search_name',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Lower(models.Func(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Concat(django.db.models.functions.comparison.Coalesce('first_name', models.Value('')), models.Value(' '), django.db.models.functions.comparison.Coalesce('last_name', models.Value(''))), models.Value('ß'), models.Value('ss')), models.Value('Æ'), models.Value('ae')), models.Value('æ'), models.Value('ae')), models.Value('Œ'), models.Value('oe')), models.Value('œ'), models.Value('oe')), models.Value('ẞ'), models.Value('ss')), models.Value('ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿŠšŽžČčĆćŁłŃńŚśŹźŻżĘęĄąŘřŤťĎďŇňŮůĞğİıŞş'), models.Value('AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyySsZzCcCcLlNnSsZzZzEeAaRrTtDdNnUuGgIiSs'), function='translate', output_field=models.TextField())), output_field=models.TextField()),
        ),
        migrations.AddField(
            model_name='contact',
            name='search_text',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Lower(models.Func(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Concat(django.db.models.functions.text.Concat(django.db.models.functions.comparison.Coalesce('first_name', models.Value('')), models.Value(' '), django.db.models.functions.comparison.Coalesce('last_name', models.Value(''))), models.Value(' '), django.db.models.functions.comparison.Coalesce('email', models.Value('')), models.Value(' '), django.db.models.functions.comparison.Coalesce('phone', models.Value('')), output_field=models.TextField()), models.Value('ß'), models.Value('ss')), models.Value('Æ'), models.Value('ae')), models.Value('æ'), models.Value('ae')), models.Value('Œ'), models.Value('oe')), models.Value('œ'), models.Value('oe')), models.Value('ẞ'), models.Value('ss')), models.Value('ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿŠšŽžČčĆćŁłŃńŚśŹźŻżĘęĄąŘřŤťĎďŇňŮůĞğİıŞş'), models.Value('AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyySsZzCcCcLlNnSsZzZzEeAaRrTtDdNnUuGgIiSs'), function='translate', output_field=models.TextField())), output_field=models.TextField()),
        ),
        migrations.AddField(
            model_name='deal',
            name='search_name',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Lower(models.Func(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace('title', models.Value('ß'), models.Value('ss')), models.Value('Æ'), models.Value('ae')), models.Value('æ'), models.Value('ae')), models.Value('Œ'), models.Value('oe')), models.Value('œ'), models.Value('oe')), models.Value('ẞ'), models.Value('ss')), models.Value('ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿŠšŽžČčĆćŁłŃńŚśŹźŻżĘęĄąŘřŤťĎďŇňŮůĞğİıŞş'), models.Value('AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyySsZzCcCcLlNnSsZzZzEeAaRrTtDdNnUuGgIiSs'), function='translate', output_field=models.TextField())), output_field=models.TextField()),
        ),
        migrations.AddIndex(
            model_name='company',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass('search_name', name='gin_trgm_ops'), name='crm_company_name_trgm'),
        ),
        migrations.AddIndex(
            model_name='contact',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass('search_name', name='gin_trgm_ops'), name='crm_contact_name_trgm'),
        ),
        migrations.AddIndex(
            model_name='contact',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass('search_text', name='gin_trgm_ops'), name='crm_contact_text_trgm'),
        ),
        migrations.AddIndex(
            model_name='deal',
            index=django.contrib.postgres.indexes.GinIndex(django.contrib.postgres.indexes.OpClass('search_name', name='gin_trgm_ops'), name='crm_deal_title_trgm'),
        ),
    ]
