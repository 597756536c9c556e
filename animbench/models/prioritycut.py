"""Models trained by `animbench train` (PriorityCut and its ladder): the FOMM modules with the configuration
stored in the checkpoint's `animbench` entry."""
from animbench.models.fomm.checkpoint import load_fomm


def load_prioritycut(checkpoint=None, config=None, device="cpu", align_corners=True, **options):
    if checkpoint is None:
        from animbench.errors import UserError

        raise UserError("--model prioritycut needs --checkpoint (a file written by `animbench train`)")
    model = load_fomm(checkpoint, config, device, align_corners, **options)
    model.name = "prioritycut"
    return model
