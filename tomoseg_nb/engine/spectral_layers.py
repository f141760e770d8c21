"""Keras layers that train a Conv2D network through the Fourier domain, on every Keras backend.

``SpectralConv2D`` has exactly the weights of a ``Conv2D`` ("same" padding, stride 1: kernel
``(kh, kw, cin, cout)`` and bias) and computes the same cross-correlation as a product of discrete
Fourier transforms, written with ``keras.ops`` so it is differentiable on TensorFlow, JAX and
PyTorch. Keras 3.15 offers only 1D real FFTs (``ops.rfft`` / ``ops.irfft``) and complex
``ops.fft`` / ``ops.fft2`` on the last axes, so a 2D real transform needs transposes and
complex packing; on training tiles (32-80 pixels) the transform is cheaper as matrix products
with precomputed twiddle factors, which also fold in the zero padding and the crop to "same".

The layers work on tensors laid out ``(y, x, batch, channel)``: then every transform is a plain
(broadcast) matrix product over the two leading axes, the channel mixing is one matrix product
per frequency with the batch as rows, and nothing is transposed between layers.
``ToSpatialMajor`` / ``ToBatchMajor`` convert at the model's ends, where there is one channel.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


def _size(x: Any, axis: int) -> Any:
    """Static size of an axis when known (ints keep graphs simple), else a dynamic scalar."""
    size = x.shape[axis]
    return size if size is not None else ops.shape(x)[axis]


def _twiddles(rows: Any, columns: Any, period: Any, shift: int = 0) -> tuple[Any, Any]:
    """``cos`` and ``sin`` of ``2 pi ((r * (c - shift)) mod period) / period``, ``(rows, columns)``.

    Reducing the integer phase modulo the period keeps the float32 arguments small and exact.
    """
    r = ops.expand_dims(ops.arange(rows, dtype="int32"), 1)
    c = ops.expand_dims(ops.arange(columns, dtype="int32") - shift, 0)
    phase = ops.cast(ops.mod(r * c, period), "float32") * (2.0 * math.pi)
    angle = phase / ops.cast(period, "float32")
    return ops.cos(angle), ops.sin(angle)


def _complex_matmul(a_real: Any, a_imag: Any, b_real: Any, b_imag: Any) -> tuple[Any, Any]:
    """``(a_real - i a_imag) @ (b_real - i b_imag)`` as ``(real, -imag)``, in three products.

    The twiddle matrices' conjugate convention keeps the signs in one place; the third product
    (Gauss's trick) replaces two, a quarter less arithmetic for one extra addition of each input.
    """
    t1 = ops.matmul(a_real, b_real)
    t2 = ops.matmul(a_imag, b_imag)
    t3 = ops.matmul(a_real + a_imag, b_real + b_imag)
    return t1 - t2, t3 - t1 - t2


@keras.saving.register_keras_serializable(package="tomoseg_nb")
class ToSpatialMajor(keras.layers.Layer):
    """``(batch, y, x, c)`` -> ``(y, x, batch, c)``."""

    def call(self, x: Any) -> Any:
        return ops.transpose(x, (1, 2, 0, 3))

    def compute_output_shape(self, shape: tuple) -> tuple:
        return (shape[1], shape[2], shape[0], shape[3])


@keras.saving.register_keras_serializable(package="tomoseg_nb")
class ToBatchMajor(keras.layers.Layer):
    """``(y, x, batch, c)`` -> ``(batch, y, x, c)``."""

    def call(self, x: Any) -> Any:
        return ops.transpose(x, (2, 0, 1, 3))

    def compute_output_shape(self, shape: tuple) -> tuple:
        return (shape[2], shape[0], shape[1], shape[3])


@keras.saving.register_keras_serializable(package="tomoseg_nb")
class SpatialMaxPooling2D(keras.layers.Layer):
    """``MaxPooling2D(size)`` (stride = size, "valid") on ``(y, x, batch, c)`` tensors."""

    def __init__(self, pool_size: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def call(self, x: Any) -> Any:
        # (y, x, batch, c) is a single image with batch * c channels: a free reshape lets the
        # backend's own max-pool (and its gradient, the same as MaxPooling2D's) do the work
        h, w, channels = _size(x, 0), _size(x, 1), x.shape[-1]
        pooled = ops.max_pool(
            ops.reshape(x, (1, h, w, -1)), self.pool_size, strides=self.pool_size, padding="valid"
        )
        return ops.reshape(pooled, (h // self.pool_size, w // self.pool_size, -1, channels))

    def compute_output_shape(self, shape: tuple) -> tuple:
        p = self.pool_size
        return tuple(None if s is None else s // p for s in shape[:2]) + tuple(shape[2:])

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package="tomoseg_nb")
class SpectralConv2D(keras.layers.Layer):
    """``Conv2D(filters, kernel_size, padding="same")`` on ``(y, x, batch, c)`` tensors, by DFT.

    Weights ``kernel`` ``(kh, kw, cin, filters)`` and ``bias`` ``(filters,)`` are interchangeable
    with ``Conv2D``'s. For a ``(h, w)`` input the transform has period ``h + reach`` along y
    (``reach`` = the larger one-sided kernel overhang), the least that keeps the circular
    correlation from wrapping onto the kept outputs; half of the x frequencies are kept (real
    signal).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.kernel_size = tuple(int(k) for k in size)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape: tuple) -> None:
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, int(input_shape[-1]), self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)
            if self.use_bias
            else None
        )

    def compute_output_shape(self, shape: tuple) -> tuple:
        return (*shape[:3], self.filters)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }

    def _kernel_spectrum(self, period_y: Any, period_x: Any, half_x: Any) -> tuple[Any, Any]:
        """``conj`` of the kernel's DFT (correlation), centred like Keras's "same" padding.

        Returns real and imaginary parts, ``(period_y * half_x, cin, cout)``.
        """
        kh, kw, cin, cout = self.kernel.shape
        cos_x, sin_x = _twiddles(half_x, kw, period_x, (kw - 1) // 2)  # (half_x, kw)
        cos_y, sin_y = _twiddles(period_y, kh, period_y, (kh - 1) // 2)  # (period_y, kh)
        weights = ops.reshape(self.kernel, (kh, kw, cin * cout))
        # conj(G) = sum w e^{+i theta}: x pass, then y pass (real and imaginary parts)
        real = ops.reshape(ops.matmul(cos_x, weights), (kh, -1))
        imag = ops.reshape(ops.matmul(sin_x, weights), (kh, -1))
        spectrum_real = ops.matmul(cos_y, real) - ops.matmul(sin_y, imag)
        spectrum_imag = ops.matmul(cos_y, imag) + ops.matmul(sin_y, real)
        shape = (-1, cin, cout)
        return ops.reshape(spectrum_real, shape), ops.reshape(spectrum_imag, shape)

    def call(self, x: Any) -> Any:
        kh, kw, cin, cout = self.kernel.shape
        h, w = _size(x, 0), _size(x, 1)
        period_y = h + kh // 2  # kh // 2: the larger side of Keras's "same" padding
        period_x = w + kw // 2
        half_x = period_x // 2 + 1
        # forward transform, x then y: X = sum x e^{-i theta}
        cos_x, sin_x = _twiddles(half_x, w, period_x)  # (half_x, w)
        flat = ops.reshape(x, (h, w, -1))
        rows_real = ops.reshape(ops.matmul(cos_x, flat), (h, -1))
        rows_imag = ops.reshape(ops.matmul(sin_x, flat), (h, -1))  # minus the imaginary part
        cos_y, sin_y = _twiddles(period_y, h, period_y)  # (period_y, h)
        spectrum_real, spectrum_imag = _complex_matmul(cos_y, sin_y, rows_real, rows_imag)
        spectrum_imag = -spectrum_imag
        frequencies = (-1, _size(x, 2), cin)
        spectrum_real = ops.reshape(spectrum_real, frequencies)
        spectrum_imag = ops.reshape(spectrum_imag, frequencies)
        # channel mixing, one complex product per frequency (three real products)
        kernel_real, kernel_imag = self._kernel_spectrum(period_y, period_x, half_x)
        if cin == 1:
            t1 = spectrum_real * kernel_real
            t2 = spectrum_imag * kernel_imag
            t3 = (spectrum_real + spectrum_imag) * (kernel_real + kernel_imag)
        else:
            t1 = ops.matmul(spectrum_real, kernel_real)
            t2 = ops.matmul(spectrum_imag, kernel_imag)
            t3 = ops.matmul(spectrum_real + spectrum_imag, kernel_real + kernel_imag)
        mixed_real = ops.reshape(t1 - t2, (period_y, -1))
        mixed_imag = ops.reshape(t3 - t1 - t2, (period_y, -1))
        # inverse transform to the kept outputs only: y, then the real x pass
        cos_y, sin_y = _twiddles(h, period_y, period_y)  # (h, period_y)
        scale_y = 1.0 / ops.cast(period_y, "float32")
        # (cos + i sin) @ (real + i imag) is the conjugate of what _complex_matmul forms, so its
        # (real, -imag) output is exactly (real, imag) here
        cols_real, cols_imag = _complex_matmul(
            cos_y * scale_y, sin_y * scale_y, mixed_real, mixed_imag
        )
        cos_x, sin_x = _twiddles(w, half_x, period_x)  # (w, half_x)
        # a real signal's spectrum counts every x frequency twice except 0 and Nyquist
        q = ops.arange(half_x, dtype="int32")
        edge = ops.logical_or(ops.equal(q, 0), ops.equal(2 * q, period_x))
        weight = ops.where(edge, 1.0, 2.0) / ops.cast(period_x, "float32")
        cos_x, sin_x = cos_x * weight, sin_x * weight
        cols_real = ops.reshape(cols_real, (h, half_x, -1))
        cols_imag = ops.reshape(cols_imag, (h, half_x, -1))
        y = ops.matmul(cos_x, cols_real) - ops.matmul(sin_x, cols_imag)  # (h, w, batch * cout)
        y = ops.reshape(y, (h, w, -1, cout))
        if self.use_bias:
            y = y + self.bias
        return self.activation(y)
