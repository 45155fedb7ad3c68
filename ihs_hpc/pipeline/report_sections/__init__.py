"""The sections of the run report (:mod:`ihs_hpc.pipeline.report`), one module per section: each reads
``RUN/stats/`` through a :class:`~.context.ReportContext`, draws its figures and returns a
:class:`~ihs_hpc.report.html.Section` (or None when its inputs are absent)."""
