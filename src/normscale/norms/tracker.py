"""Measure a model's norms once (:func:`measure`) or repeatedly during training.

:class:`NormTracker` discovers the weight matrices once, keeps the reference
weights M_i (zero, the weights at construction, or a given state dict) and,
per layer, the right singular vector of the last measurement, so that the
next measurement warm-starts power iteration from it: during training the
weights move little between logging points and a measurement costs a few
matrix-vector products per layer instead of one SVD per layer.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from normscale._validation import POSITIVE, POSITIVE_INT, Options, check_param
from normscale.errors import ParameterError
from normscale.norms.conv_operator import conv_input_sizes, conv_operator_norm
from normscale.norms.discovery import Discovery, LayerSpec, discover
from normscale.norms.measures import (
    MEASURES,
    Complexity,
    LayerNorms,
    check_kinds,
    complexity,
    matrix_norms,
)
from normscale.norms.power import exact_spectral_norm, power_iteration, refine

SPECTRAL_METHODS = ("power", "exact")
CONV_MODES = ("reshape", "operator")
_NEEDS_SIGMA = frozenset(MEASURES[:6])  # the measures built from spectral norms
#: the columns of the per-layer table (:meth:`NormReport.frame`, :func:`layers`), in order
LAYER_COLUMNS = ("name", "kind", "rows", "cols", "spectral_norm", "two_one", "frobenius",
                 "stable_rank", "two_one_weights", "l1", "distance", "rho", "n_iter",
                 "converged")

if TYPE_CHECKING:  # pandas is imported when a table is asked for
    import pandas as pd

Reference = None | str | nn.Module | Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class NormReport:
    """One measurement: per-layer norms, totals, and the parameters not counted.

    Attributes
    ----------
    layers : tuple of LayerNorms
        The norms of every counted weight matrix, in discovery order.
    complexity : Complexity
        The totals over those matrices: every measure of :data:`MEASURES`.
    ignored : tuple of str
        Names of the model's parameters that enter no counted matrix
        (normalisation layers and biases by default, positional embeddings,
        class tokens, unsupported layer types).
    """

    layers: tuple[LayerNorms, ...]
    complexity: Complexity
    ignored: tuple[str, ...]

    def frame(self) -> pd.DataFrame:
        """The per-layer table: one row per counted matrix, in discovery order.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`LAYER_COLUMNS`: ``name``, ``kind``, ``rows``,
            ``cols``, ``spectral_norm``, ``two_one`` (Bartlett's
            ||A_i^T - M_i^T||_{2,1}), ``frobenius``, ``stable_rank``
            (||A_i||_F^2 / ||A_i||_sigma^2, between 1 and min(rows, cols)),
            then ``two_one_weights``, ``l1``, ``distance``, ``rho``,
            ``n_iter``, ``converged``. ``attrs["totals"]`` holds the
            measures of :data:`MEASURES` and ``attrs["ignored"]`` the
            parameters not counted.
        """
        import pandas as pd

        rows = []
        for r in self.layers:
            sigma = r.spectral_norm
            stable = r.frobenius ** 2 / sigma ** 2 if sigma > 0 else math.nan
            rows.append({"name": r.name, "kind": r.kind, "rows": r.shape[0],
                         "cols": r.shape[1], "spectral_norm": sigma, "two_one": r.two_one,
                         "frobenius": r.frobenius, "stable_rank": stable,
                         "two_one_weights": r.two_one_weights, "l1": r.l1,
                         "distance": r.distance, "rho": r.rho, "n_iter": r.n_iter,
                         "converged": r.converged})
        table = pd.DataFrame(rows, columns=list(LAYER_COLUMNS))
        table.attrs["totals"] = self.complexity.as_dict()
        table.attrs["ignored"] = list(self.ignored)
        return table


class NormTracker:
    """Norm-based complexity of ``model``, cheap to repeat during training.

    Parameters
    ----------
    model : torch.nn.Module
        Any model; its live weights are read at every measurement.
    reference : None, "init", nn.Module or state dict, default None
        The reference M of Bartlett's (2,1) terms and of the distance from
        initialisation: None for M = 0, ``"init"`` for a snapshot of the
        weights at construction, or a model / state dict of the same
        architecture.
    rho : float or mapping of layer name to float, default 1.0
        Lipschitz constants rho_i of the activations (1 for ReLU, the
        paper's choice throughout); layers missing from a mapping get 1.
    spectral : {"power", "exact"}, default "power"
        Spectral norms by warm-started power iteration (iterating on float32
        views of the weights, the final sigma = ||A v|| in float64; see
        :func:`~normscale.norms.power.refine`) or by a full SVD.
    tol : float, default 1e-10
        Convergence test of power iteration (see :func:`power_iteration`).
    max_iter : int, default 300
        Iterations per layer and measurement before the fallback.
    fallback : bool, default True
        Use the exact value for a layer whose power iteration did not converge.
    conv : {"reshape", "operator"}, default "reshape"
        Spectral norm of a convolution: of its reshaped kernel (the paper's
        choice) or the exact operator norm of the circular convolution on
        the input size the layer sees for ``input_shape`` (always exact).
    input_shape : sequence of int, optional
        Shape of one input, e.g. (1, 28, 28); required for ``conv="operator"``.
    norm_layers, bias, embeddings, split_qkv :
        What counts as a matrix; see :func:`~normscale.norms.discovery.discover`.

    Examples
    --------
    >>> tracker = NormTracker(model, reference="init")  # doctest: +SKIP
    >>> tracker.measure()["log10_spectral_complexity"]  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, *, reference: Reference = None,
                 rho: float | Mapping[str, float] = 1.0, spectral: str = "power",
                 tol: float = 1e-10, max_iter: int = 300, fallback: bool = True,
                 conv: str = "reshape", input_shape: Sequence[int] | None = None,
                 norm_layers: str = "ignore", bias: bool = False, embeddings: bool = False,
                 split_qkv: bool = True) -> None:
        owner = "NormTracker"
        check_param(owner, "spectral", spectral, Options(SPECTRAL_METHODS))
        check_param(owner, "conv", conv, Options(CONV_MODES))
        check_param(owner, "tol", tol, POSITIVE)
        check_param(owner, "max_iter", max_iter, POSITIVE_INT)
        self.model = model
        self.spectral, self.tol, self.max_iter, self.fallback = spectral, tol, max_iter, fallback
        self.conv = conv
        self.discovery: Discovery = discover(model, norm_layers=norm_layers, bias=bias,
                                             embeddings=embeddings, split_qkv=split_qkv)
        warn_unsupported(self.discovery)
        self.rhos = _rhos(rho, self.discovery.layers)
        self._input_sizes: dict[str, tuple[int, ...]] = {}
        if conv == "operator":
            transposed = [s.name for s in self.discovery.layers
                          if s.kind.startswith("conv_transpose")]
            if transposed:
                raise ParameterError(
                    "conv='operator' takes the exact operator norm of convolutions only; "
                    f"the transposed convolutions {', '.join(transposed)} have none here: "
                    "use conv='reshape'")
            if input_shape is None:
                raise ParameterError("The 'input_shape' parameter of NormTracker is required "
                                     "with conv='operator'. Got None instead.")
            self._input_sizes = conv_input_sizes(model, input_shape)
        self._reference = self._reference_matrices(reference)
        self._vectors: list[torch.Tensor | None] = [None] * len(self.discovery.layers)

    @property
    def has_reference(self) -> bool:
        return self._reference is not None

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to measure as this tracker would: warm-start and reference.

        ``layers`` names the counted matrices (checked on load), ``vectors``
        holds the last right singular vector of each (None before its first
        power iteration), ``reference`` the matrices M_i (None for M = 0).
        Tensors are copied to the CPU, so the state pickles with a checkpoint.
        """
        def cpu(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.detach().to("cpu", copy=True)

        return {"layers": [s.name for s in self.discovery.layers],
                "vectors": [cpu(v) for v in self._vectors],
                "reference": (None if self._reference is None
                              else [cpu(m) for m in self._reference])}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`: the next measurement warm-starts from its vectors.

        Raises
        ------
        ParameterError
            When the state was saved for other matrices (another model).
        """
        names = [s.name for s in self.discovery.layers]
        if list(state.get("layers", ())) != names:
            raise ParameterError("the NormTracker state was saved for other matrices "
                                 f"({len(state.get('layers', ()))} layers, this model counts "
                                 f"{len(names)}); was it saved for another model?")
        device = _device(self.model)
        self._vectors = [None if v is None else v.to(device) for v in state["vectors"]]
        ref = state.get("reference")
        self._reference = None if ref is None else [m.to(device, torch.float64) for m in ref]

    def measure(self, kinds: Sequence[str] | None = None) -> dict[str, float]:
        """The measures named in ``kinds`` (default: all of :data:`MEASURES`)."""
        return self.report(kinds).complexity.as_dict(kinds)

    def layers(self) -> tuple[LayerNorms, ...]:
        """Per-layer norms of every counted matrix (name, shape, spectral norm, (2,1) term...)."""
        return self.report().layers

    @torch.no_grad()
    def report(self, kinds: Sequence[str] | None = None) -> NormReport:
        """One measurement: per-layer norms and totals (spectral norms only if needed)."""
        need_sigma = bool(_NEEDS_SIGMA & set(check_kinds(kinds)))
        tensors = _live_tensors(self.model)
        rows = []
        for i, spec in enumerate(self.discovery.layers):
            a = spec.matrix(tensors)
            ref = self._reference[i] if self._reference is not None else None
            sigma, n_iter, converged = self._spectral_norm(i, spec, a, tensors) if need_sigma \
                else (float("nan"), 0, True)
            norms = {k: float(v) for k, v in matrix_norms(a, ref).items()}
            rows.append(LayerNorms(name=spec.name, kind=spec.kind, shape=spec.shape,
                                   spectral_norm=sigma, rho=self.rhos[i], n_iter=n_iter,
                                   converged=converged, **norms))
        return NormReport(layers=tuple(rows),
                          complexity=complexity(rows, has_reference=self.has_reference),
                          ignored=self.discovery.ignored)

    def _spectral_norm(self, i: int, spec: LayerSpec, a: torch.Tensor,
                       tensors: Mapping[str, torch.Tensor]) -> tuple[float, int, bool]:
        if spec.conv is not None and self.conv == "operator":
            g = spec.conv
            if g.module not in self._input_sizes:
                raise ParameterError(f"the convolution {g.module!r} was not reached by a forward "
                                     "pass on 'input_shape'; cannot take its operator norm")
            kernel = a[:, :g.in_channels // g.groups * math.prod(g.kernel_size)]
            kernel = kernel.reshape(g.out_channels, g.in_channels // g.groups, *g.kernel_size)
            return conv_operator_norm(kernel, input_size=self._input_sizes[g.module],
                                      stride=g.stride, dilation=g.dilation,
                                      groups=g.groups), 0, True
        if self.spectral == "exact":
            return exact_spectral_norm(a), 0, True
        low = spec.matrix(tensors, dtype=torch.float32)  # a view of the weight, mostly
        result = refine(a, power_iteration(low, self._vectors[i], tol=self.tol,
                                           max_iter=self.max_iter, seed=i))
        self._vectors[i] = result.v
        if not result.converged and self.fallback:
            return exact_spectral_norm(a), result.n_iter, True
        return result.sigma, result.n_iter, result.converged

    def _reference_matrices(self, reference: Reference) -> list[torch.Tensor] | None:
        if reference is None:
            return None
        if isinstance(reference, str):
            check_param("NormTracker", "reference", reference, Options(("init",)))
            tensors = _live_tensors(self.model)
        elif isinstance(reference, nn.Module):
            tensors = _live_tensors(reference)
        elif isinstance(reference, Mapping):
            tensors = reference
        else:
            raise ParameterError(
                "The 'reference' parameter of NormTracker must be None, 'init', a module or a "
                f"state dict. Got {type(reference).__name__} instead.")
        matrices = []
        for spec in self.discovery.layers:
            missing = [k for k in spec.sources if k not in tensors]
            if missing:
                raise ParameterError(f"the reference has no tensor {missing[0]!r} "
                                     f"(needed for layer {spec.name!r})")
            m = spec.matrix(tensors).clone()
            if tuple(m.shape) != spec.shape:
                raise ParameterError(f"the reference matrix of layer {spec.name!r} has shape "
                                     f"{tuple(m.shape)}, the model's {spec.shape}")
            matrices.append(m)
        return matrices


def measure(model: nn.Module, reference: Reference = None, kinds: Sequence[str] | None = None,
            **options) -> dict[str, float]:
    """Norm-based complexity measures of ``model`` (docs/science.md 2.1), exact, in float64.

    Parameters
    ----------
    model : torch.nn.Module
    reference : None, nn.Module or state dict, default None
        Reference M of the (2,1) terms and of ``distance_from_init``.
    kinds : sequence of str, optional
        Names from :data:`MEASURES` to return (default all); spectral norms
        are not computed when no requested measure needs them.
    **options
        Keyword arguments of :class:`NormTracker` (``rho``, ``conv``,
        ``input_shape``, ``norm_layers``, ``bias``, ``embeddings``,
        ``spectral``; the default here is ``spectral="exact"``).

    Returns
    -------
    dict of str to float
        Keys in the order of :data:`MEASURES` (restricted to ``kinds``).
    """
    options.setdefault("spectral", "exact")
    return NormTracker(model, reference=reference, **options).measure(kinds)


def layers(model: nn.Module, reference: Reference = None, *, frame: bool = True,
           **options) -> pd.DataFrame | tuple[LayerNorms, ...]:
    """What :func:`measure` counted, one row per matrix (WeightWatcher-style table).

    Parameters
    ----------
    model : torch.nn.Module
    reference : None, nn.Module or state dict, default None
        Reference M of the (2,1) terms and of the distances.
    frame : bool, default True
        Return a pandas DataFrame (:meth:`NormReport.frame`: name, kind,
        shape, spectral norm, (2,1) term, Frobenius norm, stable rank, ...,
        with the totals of :func:`measure` in ``attrs["totals"]``); False
        returns the tuple of :class:`LayerNorms`.
    **options
        As for :func:`measure` (default ``spectral="exact"``).

    Returns
    -------
    pandas.DataFrame or tuple of LayerNorms
        One row per counted matrix, in discovery order.

    Examples
    --------
    >>> table = layers(model)                  # doctest: +SKIP
    >>> table[["name", "spectral_norm", "stable_rank"]]  # doctest: +SKIP
    >>> table.attrs["totals"]["spectral_complexity"]     # doctest: +SKIP
    """
    options.setdefault("spectral", "exact")
    report = NormTracker(model, reference=reference, **options).report()
    return report.frame() if frame else report.layers


def warn_unsupported(discovery: Discovery) -> None:
    """Warn, naming them, about layers with weights that no measure counts."""
    if discovery.unsupported:
        warnings.warn(f"norms: {len(discovery.unsupported)} layers with weights have no "
                      "weight-matrix definition and are not counted: "
                      + ", ".join(discovery.unsupported), UserWarning, stacklevel=3)


def _device(model: nn.Module) -> torch.device:
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def _live_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(model.named_buffers()), **dict(model.named_parameters())}


def _rhos(rho: float | Mapping[str, float], specs: Sequence[LayerSpec]) -> list[float]:
    if isinstance(rho, Mapping):
        names = {s.name for s in specs}
        for k, v in rho.items():
            if k not in names:
                raise ParameterError(f"The 'rho' parameter of NormTracker names layer {k!r}, "
                                     "which is not counted; see normscale.norms.layers(model).")
            check_param("NormTracker", f"rho[{k!r}]", v, POSITIVE)
        return [float(rho.get(s.name, 1.0)) for s in specs]
    if not isinstance(rho, Real):
        raise ParameterError(f"The 'rho' parameter of NormTracker must be a float > 0 or a "
                             f"mapping. Got {rho!r} instead.")
    check_param("NormTracker", "rho", rho, POSITIVE)
    return [float(rho)] * len(specs)

