"""Layer discovery: the weight matrices A_1..A_L of any ``torch.nn.Module``.

docs/science.md 2.1 defines the matrices that enter the norm-based measures:
Linear layers give their (out, in) weight; a convolution gives its kernel
reshaped to (out, in/groups * prod(kernel)); attention gives Q, K, V and the
output projection as separate matrices. The definition extends to two more
families **(normscale)**: a transposed convolution is the adjoint of the
convolution with the same kernel, so it gives the transpose of that
convolution's matrix, (out/groups * prod(kernel), in); a recurrent layer
(``nn.RNN``, ``nn.LSTM``, ``nn.GRU``) gives each of its weight matrices,
input-to-hidden (gates * hidden, in), hidden-to-hidden (gates * hidden,
hidden) and an LSTM's projection, per layer and direction, as a Linear
would. A layer with weights but no such definition (``nn.Bilinear``, whose
map is not linear in its input; any unknown layer type) is named in
:attr:`Discovery.unsupported`, and a model with no matrix at all is refused,
so a measure is never 0 for "nothing measured". :func:`discover` walks *every*
submodule (``named_modules``, so residual blocks and nested containers are
all visited, unlike the paper's code whose ResNet measure saw only the head)
and returns one :class:`LayerSpec` per matrix, in registration order, which
is the forward order for sequential models and for the blocks of the usual
CNN/ResNet/ViT code (the measures themselves do not depend on the order).

A :class:`LayerSpec` holds no tensor: it names the tensors it is built from,
so the same spec builds the current matrix from the live model and the
reference matrix from a saved state dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

from normscale._validation import Options, check_param
from normscale.errors import ParameterError

NORM_LAYER_MODES = ("ignore", "fold", "diagonal")


@dataclass(frozen=True)
class NormAffine:
    """A normalisation layer seen as the affine map ``y -> scale * y + shift``.

    BatchNorm in evaluation mode: ``scale = gamma / sqrt(running_var + eps)``,
    ``shift = beta - running_mean * scale``. LayerNorm, GroupNorm and
    InstanceNorm (or a BatchNorm without running statistics): ``scale =
    gamma``, ``shift = beta`` (their normalisation itself is not linear).

    Attributes
    ----------
    weight : str or None
        Key of gamma, the learned scale; None without one (scale 1).
    bias : str or None
        Key of beta, the learned shift; None without one (shift 0).
    running_mean : str or None
        Key of a BatchNorm's running mean; None for a layer that keeps none.
    running_var : str or None
        Key of a BatchNorm's running variance; None for a layer that keeps none.
    eps : float
        The layer's ``eps``, added to the running variance.
    size : int
        Features the affine map acts on (the length of ``scale`` and ``shift``).
    """

    weight: str | None
    bias: str | None
    running_mean: str | None
    running_var: str | None
    eps: float
    size: int

    def scale(self, tensors: Mapping[str, torch.Tensor],
              dtype: torch.dtype = torch.float64) -> torch.Tensor:
        s = (_as(tensors[self.weight], dtype).reshape(-1) if self.weight
             else torch.ones(self.size, dtype=dtype))
        if self.running_var:
            s = s / torch.sqrt(_as(tensors[self.running_var], dtype) + self.eps)
        return s

    def shift(self, tensors: Mapping[str, torch.Tensor],
              dtype: torch.dtype = torch.float64) -> torch.Tensor:
        b = (_as(tensors[self.bias], dtype).reshape(-1) if self.bias
             else torch.zeros(self.size, dtype=dtype))
        if self.running_mean:
            b = b - _as(tensors[self.running_mean], dtype) * self.scale(tensors, dtype)
        return b


@dataclass(frozen=True)
class ConvGeometry:
    """What the exact operator norm of a convolution needs besides its kernel.

    Attributes
    ----------
    module : str
        The convolution's module name in the model.
    kernel_size, stride, dilation : tuple of int
        The layer's own, one entry per spatial dimension.
    groups : int
        Its channel groups (``groups=in_channels`` for a depthwise convolution).
    in_channels, out_channels : int
        Its input and output channels.
    """

    module: str
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    in_channels: int
    out_channels: int


@dataclass(frozen=True)
class LayerSpec:
    """One weight matrix A_i: where it comes from and how to build it.

    Attributes
    ----------
    name : str
        Module name, with ``.q``/``.k``/``.v`` for a split attention projection.
    kind : str
        ``linear``, ``conv1d``/``conv2d``/``conv3d``,
        ``conv_transpose1d`` (2d, 3d), ``attention.q`` (k, v), ``embedding``,
        ``lstm.ih``/``lstm.hh``/``lstm.hr`` (``gru.*``, ``rnn.*``), or
        ``<norm>.diagonal``; ``+bn`` marks a folded BatchNorm.
    shape : tuple of int
        (rows, cols) of the matrix (cols include the bias column if counted).
    weight : str or None
        Key of the weight tensor (None for a diagonal normalisation layer).
    bias : str or None
        Key of the bias appended as a last column; None when biases are not
        counted (a folded or diagonal layer uses its own shift instead).
    rows, bias_rows : (start, stop) or None
        Row slices of the weight and of the bias (Q, K, V of a packed projection).
    transpose : bool
        The matrix is the transpose of the reshaped weight (an embedding maps
        one-hot -> vector; a transposed convolution is a convolution's adjoint).
    affine : NormAffine or None
        Folded BatchNorm (with ``weight``) or diagonal layer (without).
    with_bias : bool
        Whether the matrix carries the bias (or shift) column.
    conv : ConvGeometry or None
        Set for convolutions.
    """

    name: str
    kind: str
    shape: tuple[int, int]
    weight: str | None
    bias: str | None = None
    rows: tuple[int, int] | None = None
    bias_rows: tuple[int, int] | None = None
    transpose: bool = False
    affine: NormAffine | None = None
    with_bias: bool = False
    conv: ConvGeometry | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        """Keys of every tensor this matrix is built from."""
        keys = [self.weight, self.bias if self.with_bias else None]
        if self.affine is not None:
            a = self.affine
            keys += [a.weight, a.running_var]
            if self.with_bias:  # the shift enters only through the bias column
                keys += [a.bias, a.running_mean]
        return tuple(k for k in keys if k)

    def matrix(self, tensors: Mapping[str, torch.Tensor],
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The matrix built from ``tensors`` (a state dict or live tensors), in ``dtype``.

        float64 by default, for the measures; in the weights' own dtype a
        plain Linear or convolution gives a view of its weight, no copy.
        """
        if self.weight is None:  # diagonal normalisation layer
            assert self.affine is not None
            a = torch.diag(self.affine.scale(tensors, dtype))
            shift = self.affine.shift(tensors, dtype)
        else:
            w = _as(tensors[self.weight], dtype)
            if self.rows is not None:
                w = w[self.rows[0]:self.rows[1]]
            a = w.reshape(w.shape[0], -1)  # (out, in/groups * prod(kernel)) for a conv
            if self.transpose:
                a = a.T
            b = torch.zeros(a.shape[0], dtype=dtype)
            if self.bias:
                b = _as(tensors[self.bias], dtype)
                if self.bias_rows is not None:
                    b = b[self.bias_rows[0]:self.bias_rows[1]]
            if self.affine is not None:  # fold BatchNorm: scale rows, move the bias
                scale = self.affine.scale(tensors, dtype)
                a = a * scale[:, None]
                shift = b * scale + self.affine.shift(tensors, dtype)
            else:
                shift = b
        if self.with_bias:
            a = torch.cat([a, shift[:, None]], dim=1)
        return a


@dataclass(frozen=True)
class Discovery:
    """The result of :func:`discover`: the counted matrices and what was left out.

    Attributes
    ----------
    layers : tuple of LayerSpec
        Every counted weight matrix, in the model's module order.
    ignored : tuple of str
        Every parameter of the model that enters no matrix (normalisation
        layers by default, biases by default, positional embeddings, class
        tokens, unsupported layer types), so nothing is left out silently.
    unsupported : tuple of str
        The modules that hold a weight but have no weight-matrix definition
        (``nn.Bilinear``, unknown layer types);
        :class:`~normscale.norms.NormTracker` warns with their names.
    """

    layers: tuple[LayerSpec, ...]
    ignored: tuple[str, ...]
    unsupported: tuple[str, ...] = ()


def _as(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t.detach().to(dtype)


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _linear(name: str, module: nn.Linear, bias: bool, part: str = "",
            rows: tuple[int, int] | None = None) -> LayerSpec:
    """The Linear ``name``, or its rows ``rows`` as the attention matrix ``part``."""
    n_rows = module.out_features if rows is None else rows[1] - rows[0]
    has_bias = bias and module.bias is not None
    return LayerSpec(name=_key(name, part) if part else name,
                     kind=f"attention.{part}" if part else "linear",
                     shape=(n_rows, module.in_features + has_bias), weight=_key(name, "weight"),
                     bias=_key(name, "bias") if has_bias else None,
                     rows=rows, bias_rows=rows if has_bias else None, with_bias=has_bias)


def _conv(name: str, module: _ConvNd, bias: bool) -> LayerSpec:
    cols = module.weight[0].numel()
    has_bias = bias and module.bias is not None
    geometry = ConvGeometry(module=name, kernel_size=tuple(module.kernel_size),
                            stride=tuple(module.stride), dilation=tuple(module.dilation),
                            groups=module.groups, in_channels=module.in_channels,
                            out_channels=module.out_channels)
    return LayerSpec(name=name, kind=f"conv{len(module.kernel_size)}d",
                     shape=(module.out_channels, cols + has_bias), weight=_key(name, "weight"),
                     bias=_key(name, "bias") if has_bias else None, with_bias=has_bias,
                     conv=geometry)


def _conv_transpose(name: str, module: _ConvNd) -> LayerSpec:
    """A transposed convolution: the adjoint of the convolution with the same kernel
    (in, out/groups, *kernel), so the transpose of its (in, out/groups * prod(kernel))
    matrix. Its bias (one per output channel, not per row) is not counted."""
    rows = module.weight[0].numel()
    return LayerSpec(name=name, kind=f"conv_transpose{len(module.kernel_size)}d",
                     shape=(rows, module.in_channels), weight=_key(name, "weight"),
                     transpose=True)


def _recurrent(name: str, module: nn.RNNBase, bias: bool) -> list[LayerSpec]:
    """Each weight matrix of a recurrent layer, per layer and direction, as a Linear:
    ``weight_ih_l<k>`` (gates * hidden, in), ``weight_hh_l<k>`` (gates * hidden, hidden
    or proj), ``weight_hr_l<k>`` (proj, hidden) for an LSTM with ``proj_size``."""
    family = type(module).__name__.lower()
    specs = []
    for key in module._flat_weights_names:
        if not key.startswith("weight_"):
            continue
        w = getattr(module, key)
        part = key.split("_")[1]  # ih, hh or hr
        bias_key = "bias_" + key[len("weight_"):]
        has_bias = bias and part != "hr" and getattr(module, bias_key, None) is not None
        specs.append(LayerSpec(name=_key(name, key), kind=f"{family}.{part}",
                               shape=(w.shape[0], w.shape[1] + has_bias),
                               weight=_key(name, key),
                               bias=_key(name, bias_key) if has_bias else None,
                               with_bias=has_bias))
    return specs


def _attention(name: str, module: nn.MultiheadAttention, bias: bool) -> list[LayerSpec]:
    e = module.embed_dim
    has_bias = bias and module.in_proj_bias is not None
    specs = []
    for i, part in enumerate("qkv"):
        rows = (i * e, (i + 1) * e)
        if module.in_proj_weight is not None:  # packed (3E, E) projection
            weight, weight_rows, cols = _key(name, "in_proj_weight"), rows, e
        else:  # separate projections (kdim/vdim != embed_dim)
            weight, weight_rows = _key(name, f"{part}_proj_weight"), None
            cols = getattr(module, f"{part}_proj_weight").shape[1]
        specs.append(LayerSpec(name=_key(name, part), kind=f"attention.{part}",
                               shape=(e, cols + has_bias), weight=weight, rows=weight_rows,
                               bias=_key(name, "in_proj_bias") if has_bias else None,
                               bias_rows=rows if has_bias else None, with_bias=has_bias))
    return specs


def _norm_affine(name: str, module: nn.Module) -> NormAffine | None:
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    running = isinstance(module, _BatchNorm) and module.track_running_stats
    if weight is None and not running:
        return None  # nothing learned and nothing linear to count
    size = weight.numel() if weight is not None else module.num_features
    return NormAffine(weight=_key(name, "weight") if weight is not None else None,
                      bias=_key(name, "bias") if bias is not None else None,
                      running_mean=_key(name, "running_mean") if running else None,
                      running_var=_key(name, "running_var") if running else None,
                      eps=float(module.eps), size=size)


def discover(model: nn.Module, *, norm_layers: str = "ignore", bias: bool = False,
             embeddings: bool = False, split_qkv: bool = True) -> Discovery:
    """Find the weight matrices of ``model`` (docs/science.md 2.1).

    Parameters
    ----------
    model : torch.nn.Module
        Any model; every submodule is visited.
    norm_layers : {"ignore", "fold", "diagonal"}, default "ignore"
        Normalisation layers: ``"ignore"`` leaves them out (the paper's
        choice); ``"fold"`` folds each BatchNorm (running statistics, i.e.
        evaluation mode) into the Linear/convolution registered just before
        it, when its size matches (other normalisation layers are ignored);
        ``"diagonal"`` counts each normalisation layer as the diagonal matrix
        of its affine scale (for BatchNorm ``gamma / sqrt(running_var + eps)``).
    bias : bool, default False
        Count biases, as a last column of each matrix (homogeneous coordinates).
    embeddings : bool, default False
        Count ``nn.Embedding`` tables, as the (dim, num_embeddings) matrix of
        the map from a one-hot vector.
    split_qkv : bool, default True
        Split a Linear named ``...qkv`` with out_features = 3 * in_features
        (the packed projection of hand-written attention blocks) into its
        Q, K, V rows. ``nn.MultiheadAttention`` is always split.

    Returns
    -------
    Discovery
        The matrices, in registration order, the parameters left out, and the
        layers with weights but no matrix definition.

    Raises
    ------
    ParameterError
        When the model has no matrix to measure (its measures would all be 0
        for "nothing measured"), naming the layers with weights not counted.
    """
    check_param("discover", "norm_layers", norm_layers, Options(NORM_LAYER_MODES))
    specs: list[LayerSpec] = []
    unsupported: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            specs += _attention(name, module, bias)
        elif isinstance(module, nn.Linear):
            leaf = name.rsplit(".", 1)[-1]
            if split_qkv and leaf.endswith("qkv") and module.out_features == 3 * module.in_features:
                e = module.in_features
                specs += [_linear(name, module, bias, p, (i * e, (i + 1) * e))
                          for i, p in enumerate("qkv")]
            else:
                specs.append(_linear(name, module, bias))
        elif isinstance(module, _ConvNd):
            specs.append(_conv_transpose(name, module) if module.transposed
                         else _conv(name, module, bias))
        elif isinstance(module, nn.RNNBase):
            specs += _recurrent(name, module, bias)
        elif isinstance(module, nn.Embedding) and embeddings:
            specs.append(LayerSpec(name=name, kind="embedding",
                                   shape=(module.embedding_dim, module.num_embeddings),
                                   weight=_key(name, "weight"), transpose=True))
        elif isinstance(module, _BatchNorm | nn.LayerNorm | nn.GroupNorm | _InstanceNorm):
            specs = _add_norm_layer(specs, name, module, norm_layers, bias)
        elif module._parameters.get("weight") is not None \
                and not isinstance(module, nn.Embedding):  # embeddings: counted on request
            unsupported.append(f"{name or '(model)'} ({type(module).__name__})")
    if not specs:
        skipped = f"; layers with weights not counted: {', '.join(unsupported)}" \
            if unsupported else ""
        raise ParameterError(
            f"the model {type(model).__name__} has no weight matrix that the norms measure "
            "(Linear, convolutions and their transposes, attention, recurrent layers; "
            f"normalisation layers with norm_layers='diagonal'){skipped}")
    counted = {k for s in specs for k in s.sources}
    ignored = tuple(n for n, _ in model.named_parameters() if n not in counted)
    return Discovery(layers=tuple(specs), ignored=ignored, unsupported=tuple(unsupported))


def _add_norm_layer(specs: list[LayerSpec], name: str, module: nn.Module, mode: str,
                    bias: bool) -> list[LayerSpec]:
    affine = _norm_affine(name, module)
    if mode == "ignore" or affine is None:
        return specs
    if mode == "diagonal":
        kind = f"{type(module).__name__.lower()}.diagonal"
        return specs + [LayerSpec(name=name, kind=kind, shape=(affine.size, affine.size + bias),
                                  weight=None, affine=affine, with_bias=bias)]
    # fold: only a BatchNorm with running statistics, into the layer just before it
    if not (isinstance(module, _BatchNorm) and affine.running_var and specs):
        return specs
    prev = specs[-1]
    if prev.affine is not None or prev.rows is not None or prev.transpose \
            or prev.shape[0] != affine.size:
        return specs
    cols = prev.shape[1] - prev.with_bias + bias  # a folded layer always has a shift
    folded = LayerSpec(name=prev.name, kind=f"{prev.kind}+bn", shape=(prev.shape[0], cols),
                       weight=prev.weight, bias=prev.bias, affine=affine,
                       with_bias=bias, conv=prev.conv)
    return specs[:-1] + [folded]
