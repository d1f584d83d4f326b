namespace Workbench.Engine;
