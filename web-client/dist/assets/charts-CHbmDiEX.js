import{c,u as a,i as s,a as l,b as t,d as i,e as n,f as $,g as r,h as e}from"./echarts-bQebvmtw.js";import"./vendor-TWRRpWG9.js";a([s,l,t,i,n,$,r,e]);export{c as echarts};
