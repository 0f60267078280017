import keras
import numpy as np
import pytest
from keras import ops

from conftest import gradient
from discomkd_keras.models.gradient_reversal import GRLScheduler, GradientReversal, dann_lambda

pytestmark = pytest.mark.portable

X = np.array([[0.1, -2.5, 3.0e-7], [1.0e4, 0.3333333, -7.25]], dtype="float32")
UPSTREAM = np.array([[1.5, -0.25, 3.0], [0.7, -1.1, 2.0e-3]], dtype="float32")


@pytest.mark.parametrize("lam", [1.0, 0.37])
def test_forward_is_identity_and_gradient_is_exactly_minus_lambda(lam):
    layer = GradientReversal(lam)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(X)), X)
    grad = gradient(lambda x: layer(x) * UPSTREAM, X)
    # Exact: -lambda * upstream as float32 products, no tolerance.
    expected = (-np.float32(lam)) * UPSTREAM
    np.testing.assert_array_equal(grad, expected)


def test_inside_tf_function_lambda_changes_without_retracing():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function is TensorFlow-only")
    import tensorflow as tf

    layer = GradientReversal(1.0)
    traces = []
    x = tf.constant(X)
    upstream = tf.constant(UPSTREAM)

    @tf.function
    def grad_fn(x):
        traces.append(1)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return y, tape.gradient(y, x, output_gradients=upstream)

    y, g = grad_fn(x)
    np.testing.assert_array_equal(y.numpy(), X)
    np.testing.assert_array_equal(g.numpy(), -UPSTREAM)
    layer.grl_lambda.assign(0.37)
    y, g = grad_fn(x)
    np.testing.assert_array_equal(y.numpy(), X)
    np.testing.assert_array_equal(g.numpy(), -np.float32(0.37) * UPSTREAM)
    assert len(traces) == 1


def test_inside_jax_jit_lambda_is_an_input_not_a_constant():
    if keras.backend.backend() != "jax":
        pytest.skip("jax.jit is JAX-only")
    import jax

    layer = GradientReversal(1.0)
    traces = []

    @jax.jit
    def grad_fn(lam, x):
        traces.append(1)

        def f(v):
            out, _ = layer.stateless_call([], [lam], v)
            return (out * UPSTREAM).sum()

        return jax.grad(f)(x)

    np.testing.assert_array_equal(np.asarray(grad_fn(np.float32(1.0), X)), -UPSTREAM)
    np.testing.assert_array_equal(np.asarray(grad_fn(np.float32(0.37), X)),
                                  -np.float32(0.37) * UPSTREAM)
    assert len(traces) == 1


def test_config_round_trip_and_keras_file(tmp_path):
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2)(GradientReversal(0.5, name="grl")(inputs))
    model = keras.Model(inputs, outputs)
    layer = GradientReversal.from_config(model.get_layer("grl").get_config())
    assert float(ops.convert_to_numpy(layer.grl_lambda)) == 0.5
    path = tmp_path / "grl.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("grl"), GradientReversal)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(loaded(X[:, :3])), ops.convert_to_numpy(model(X[:, :3]))
    )


def test_dann_ramp_values():
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(0.5) == pytest.approx(2 / (1 + np.exp(-5)) - 1)
    assert dann_lambda(1.0) == pytest.approx(2 / (1 + np.exp(-10)) - 1)
    assert dann_lambda(7.0) == dann_lambda(1.0)  # progress is clipped


def test_scheduler_values_and_unknown_schedule():
    ramp = GRLScheduler("dann", max_lambda=2.0, epochs=2, steps_per_epoch=5)
    assert ramp.value_at(0) == 0.0
    assert ramp.value_at(5) == pytest.approx(2.0 * dann_lambda(0.5))
    assert GRLScheduler("constant", 0.3).value_at(123) == 0.3
    with pytest.raises(ValueError, match="dann"):
        GRLScheduler("linear")
