// System.Numerics.Tensors also defines a Tensor type; ours is the one meant everywhere in the engine.
global using Tensor = LoPAProxy.Engine.Tensors.Tensor;
