"""Fast convolution engine: apply and train the large-kernel networks by FFT, equal to Conv2D.

``predict_slices`` applies networks to stacks of slices in tiles (Keras or the FFT engine);
``as_fft_model`` / ``copy_weights`` train a Conv2D network through a spectral twin with the same
weights; ``choose_engine`` picks the faster engine for the device and kernel size.
"""

from .choose import ENGINES, choose_engine
from .predict import predict_slices
from .twin import as_fft_model, copy_weights

__all__ = ["ENGINES", "as_fft_model", "choose_engine", "copy_weights", "predict_slices"]
