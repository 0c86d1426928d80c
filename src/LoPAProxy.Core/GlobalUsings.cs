// System.Numerics.Tensors also defines a Tensor type; the engine's is the one meant here.
global using Tensor = LoPAProxy.Engine.Tensors.Tensor;
