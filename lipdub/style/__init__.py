"""Style reference packs."""
from .pack import analyse_video, crop_space, load_pack, save_pack

__all__ = ["analyse_video", "crop_space", "load_pack", "save_pack"]
