"""Paper-style tables and plots from run directories (reads results; never imports models)."""
from animbench.reports.summary import Run, load_runs, summarize, summary_from_values
from animbench.reports.tables import make_table, table_frame


def write_plots(summary, out_dir, formats=("png", "pdf")):
    from animbench.reports.plots import write_plots as _write

    return _write(summary, out_dir, formats)


__all__ = ["Run", "load_runs", "make_table", "summarize", "summary_from_values", "table_frame", "write_plots"]
