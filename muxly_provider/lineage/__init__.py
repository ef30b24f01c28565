"""OpenLineage for Muxly's jobs (optional: through ``apache-airflow-providers-openlineage``).

* :mod:`~muxly_provider.lineage.naming`: the OpenLineage dataset (namespace, name) of each connector and
  destination type, read from their configs (no OpenLineage import);
* :mod:`~muxly_provider.lineage.schema`: field names and types sampled from the records a run sees;
* :mod:`~muxly_provider.lineage.columns`: column lineage of rename/set/remove/formula/... transformations;
* :mod:`~muxly_provider.lineage.facets`: the ``OperatorLineage`` the operators return (imports OpenLineage);
* :mod:`~muxly_provider.lineage.operators`: the mixin that gives Muxly's operators their
  ``get_openlineage_facets_on_start/complete/failure``.

Muxly imports without the OpenLineage provider; nothing here is collected when it is absent or disabled.
See ``docs/lineage.md``.
"""

from __future__ import annotations
