"""OUT/report.html: one page per output folder, rewritten by convert, validate, bench and quantize.

``validate`` and ``bench`` keep their latest result in ``OUT/.edgeport/validate.json`` and
``OUT/.edgeport/bench.json`` (the same JSON as their ``--json``; validate also keeps the values of its
worst output in ``validate-worst.npz``); ``quantize`` keeps ``OUT/quant/report.json``. The page is
built from what exists: :func:`edgeport.report.page.update_report`. Plots are PNG files under
``OUT/report_files/`` (matplotlib, Agg backend, imported only while the page is written).

The page is a by-product: when it (or the saved result) cannot be written, the command prints one
``warning:`` line naming the path and keeps its own exit code. A bundle (a read-only tarball) or a
bare model file gets no page.
"""
