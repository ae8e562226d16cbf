"""The segmentation model of the ablation: a small 2-D U-Net in Keras 3.

This is the only module of poissonblend that imports Keras. The backend is
JAX unless the user chose another one with ``KERAS_BACKEND`` before the first
import. Images go in as ``(n, rows, cols, 1)`` float32 in [-1, 1]; the model
outputs the lesion probability per pixel, same shape.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")

from ..errors import AblationError  # noqa: E402
from .config import ModelOptions  # noqa: E402

try:
    import keras  # noqa: E402
except ImportError as exc:  # pragma: no cover - the requirements install it
    raise AblationError(f"ablate needs Keras 3 and a backend (pip install -r requirements.txt): "
                        f"{exc}") from None


def _cache_compiled_programs() -> None:
    """Keep JAX's compiled programs on disk, so a resumed run does not compile its step again.

    In the user cache (``…/poissonblend/jax``) unless JAX_COMPILATION_CACHE_DIR says otherwise.
    """
    if keras.backend.backend() != "jax" or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    import jax

    from ..dataset import default_cache_dir

    jax.config.update("jax_compilation_cache_dir", str(default_cache_dir() / "jax"))


_cache_compiled_programs()

LESION_PRIOR = 0.01
"""Lesion probability the untrained network predicts everywhere (its output bias is the log-odds).

Starting at 0.5 instead, the first Adam steps push every output down so hard that ReLUs die
and the network predicts nothing for good (seen on the demo set: max probability 0.0 from
step 16 on)."""

SMOOTH = 1.0
"""Added to the numerator and denominator of the soft Dice loss (px)."""


def backend() -> str:
    """The Keras backend in use ("jax", "tensorflow", "torch", …)."""
    return keras.backend.backend()


def dice_bce_loss(y_true, y_pred):
    """Soft Dice loss over the whole batch plus mean binary cross-entropy."""
    ops = keras.ops
    intersection = ops.sum(y_true * y_pred)
    dice = (2.0 * intersection + SMOOTH) / (ops.sum(y_true) + ops.sum(y_pred) + SMOOTH)
    return (1.0 - dice) + ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))


class _Zeros(keras.initializers.Initializer):
    """Zeros made by NumPy: Keras's initialisers compile one XLA program per shape on JAX
    (about a second each on a busy 2-core machine); :func:`initial_weights` sets the real ones."""

    def __call__(self, shape, dtype=None):
        return np.zeros(shape, "float32")


def _conv_block(x, filters: int):
    for _ in range(2):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                kernel_initializer=_Zeros(), bias_initializer=_Zeros())(x)
    return x


def build_unet(shape_rc: tuple[int, int], options: ModelOptions = ModelOptions()) -> "keras.Model":
    """A compiled U-Net for ``(rows, cols, 1)`` inputs (Dice + BCE loss, Adam), weights all 0.

    Set its weights with :func:`reset` before training.

    Parameters
    ----------
    shape_rc : (int, int)
        Input (rows, cols); each a multiple of ``2 ** options.levels``.
    options : ModelOptions
    """
    step = 2 ** options.levels
    if any(n % step for n in shape_rc):
        raise AblationError(f"input shape {shape_rc} must be a multiple of {step} px")
    init = {"kernel_initializer": _Zeros(), "bias_initializer": _Zeros()}
    inputs = keras.Input((*shape_rc, 1))
    x, skips = inputs, []
    for level in range(options.levels):
        x = _conv_block(x, options.base_filters * 2 ** level)
        skips.append(x)
        x = keras.layers.MaxPooling2D()(x)
    x = _conv_block(x, options.base_filters * 2 ** options.levels)
    for level in reversed(range(options.levels)):
        filters = options.base_filters * 2 ** level
        x = keras.layers.Conv2DTranspose(filters, 2, strides=2, **init)(x)
        x = _conv_block(keras.layers.Concatenate()([x, skips[level]]), filters)
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", **init)(x)
    model = keras.Model(inputs, outputs, name="unet")
    model.compile(optimizer=keras.optimizers.Adam(options.learning_rate), loss=dice_bce_loss)
    model.optimizer.build(model.trainable_variables)
    return model


def initial_weights(model: "keras.Model", rng: np.random.Generator | int) -> list[np.ndarray]:
    """He-normal kernels, zero biases, the output bias at :data:`LESION_PRIOR`; drawn by NumPy.

    The same `rng` gives the same weights on every backend.
    """
    rng = np.random.default_rng(rng)
    weights = []
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.name == "kernel":  # (rows, cols, in, out); fan-in as Keras counts it
            fan_in = int(np.prod(shape[:-1]))
            weights.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32))
        else:  # bias
            weights.append(np.zeros(shape, np.float32))
    weights[-1][:] = np.log(LESION_PRIOR / (1 - LESION_PRIOR))  # the sigmoid output's bias
    return weights


def optimizer_state(model: "keras.Model") -> list[np.ndarray]:
    """The optimiser's variables (step count, moments, learning rate) as arrays."""
    return [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]


def reset(model: "keras.Model", weights: Sequence[np.ndarray], state: Sequence[np.ndarray]) -> None:
    """Put the model back to `weights` and its optimiser to `state` (from :func:`optimizer_state`).

    Training again from here is training a fresh model: the compiled step is reused.
    """
    model.set_weights(list(weights))
    for variable, value in zip(model.optimizer.variables, state):
        variable.assign(value)


def train(model: "keras.Model", x: np.ndarray, y: np.ndarray, batches: Sequence[np.ndarray], *,
          progress: Callable[[int, int], None] | None = None) -> float:
    """One optimiser step per batch of indices into `x`, `y`; return the last loss.

    Ctrl-C (SIGINT), and SIGTERM where it is turned into Ctrl-C, end training after the current
    step with :class:`KeyboardInterrupt` (see :func:`_interrupt_between_steps`).

    Parameters
    ----------
    x, y : (n, rows, cols, 1) ndarray of float32
    batches : sequence of (B,) ndarray of int
    progress : callable(done, total), optional
    """
    loss = float("nan")
    with _interrupt_between_steps() as interrupted:
        for k, index in enumerate(batches):
            loss = float(np.asarray(model.train_on_batch(x[index], y[index])))
            if progress is not None:
                progress(k + 1, len(batches))
            if interrupted():
                raise KeyboardInterrupt
    return loss


@contextlib.contextmanager
def _interrupt_between_steps() -> Iterator[Callable[[], bool]]:
    """Catch SIGINT and SIGTERM into a flag where Python would raise KeyboardInterrupt; yield its
    reader.

    A KeyboardInterrupt raised while a step runs is lost (JAX checks for signals while it waits
    for the step's result, inside NumPy's conversion of that result, which drops the error): a
    run went on training for 20 minutes after ``kill``. The command line turns SIGTERM into
    KeyboardInterrupt too (:func:`~poissonblend.cli.sigterm_as_interrupt`).
    """
    caught: list[int] = []
    main = threading.current_thread() is threading.main_thread()  # handlers live only there
    signals = [sig for sig in (signal.SIGINT, signal.SIGTERM)
               if main and signal.getsignal(sig) is signal.default_int_handler]
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in signals}
    try:
        yield lambda: bool(caught)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def predict(model: "keras.Model", x: np.ndarray, *, batch_size: int) -> np.ndarray:
    """Lesion probabilities, ``(n, rows, cols)`` float32, batch by batch.

    The last batch is padded to `batch_size`, so one compiled program serves every call.
    Ctrl-C and SIGTERM stop it between batches, as :func:`train` does.
    """
    out = []
    with _interrupt_between_steps() as interrupted:
        for k in range(0, len(x), batch_size):
            chunk = x[k:k + batch_size]
            padded = np.concatenate([chunk, np.zeros((batch_size - len(chunk), *x.shape[1:]), x.dtype)])
            out.append(np.asarray(model.predict_on_batch(padded))[:len(chunk), ..., 0])
            if interrupted():
                raise KeyboardInterrupt
    return np.concatenate(out) if out else np.zeros(x.shape[:3], np.float32)
